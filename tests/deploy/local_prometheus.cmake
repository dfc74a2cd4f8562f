# scripts/run-local.sh --with-prometheus on free ports: every job scraped and up, the services'
# metrics and the rules (when any) loaded; the stack stopped cleanly. Needs the six binaries.
add_test(NAME local_prometheus
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/deploy/local_prometheus_test.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(local_prometheus PROPERTIES TIMEOUT 300)
