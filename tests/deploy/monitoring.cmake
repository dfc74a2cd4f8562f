# Prometheus rules (promtool check/test rules), the Prometheus config, the PrometheusRule render
# and the Grafana dashboard: tests/deploy/monitoring_test.sh. Needs promtool (Debian package
# prometheus) and node; kubectl is used when installed. Included from tests/deploy/CMakeLists.txt.
add_test(NAME deploy_monitoring
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/monitoring_test.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(deploy_monitoring PROPERTIES TIMEOUT 120 LABELS deploy)
