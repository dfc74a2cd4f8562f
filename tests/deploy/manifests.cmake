# Renders deploy/k8s with kubectl kustomize and validates every object offline (schemas, semantic
# checks, the binaries' real flags); see manifests_test.sh. KUBECTL picks the kubectl to use.
add_test(NAME deploy_manifests
  COMMAND bash ${CMAKE_SOURCE_DIR}/tests/deploy/manifests_test.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
# The npm packages in <build>/deploy-validator are shared with deploy_dev_postgres.
set_tests_properties(deploy_manifests PROPERTIES TIMEOUT 300 RESOURCE_LOCK deploy-validator)
