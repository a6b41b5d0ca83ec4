# Sourced by scripts: keep all DDS traffic on this host, logs out of ~/.ros, and give
# each run its own domain id so parallel runs never see each other.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 100 ))}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export ROS_HOME="${ROS_HOME:-$(mktemp -d -t cyclesiam_ros_home.XXXX)}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROS_HOME/log}"
