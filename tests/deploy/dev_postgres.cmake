# The dev overlay's PostgreSQL: its init scripts run against a real PostgreSQL 15 with the
# render's connection strings, which must then work as each service's: tests/deploy/
# dev_postgres_test.sh. Needs postgresql-15, node and kubectl (KUBECTL picks it).
add_test(NAME deploy_dev_postgres
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/deploy/dev_postgres_test.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(deploy_dev_postgres PROPERTIES TIMEOUT 180 RESOURCE_LOCK deploy-validator)
