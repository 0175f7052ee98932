# Installs Nexus into a fresh prefix, builds tests/consumer against it with find_package, runs it.
# Variables: SOURCE_DIR (the Nexus tree), WORK_DIR (scratch), MODEL_DIR (a checkpoint folder).
file(REMOVE_RECURSE ${WORK_DIR})
foreach(step
    "${CMAKE_COMMAND};-S;${SOURCE_DIR};-B;${WORK_DIR}/nexus-build;-DNEXUS_BUILD_TESTS=OFF;-DNEXUS_BUILD_TOOLS=OFF;-DNEXUS_ENABLE_CUDA=OFF"
    "${CMAKE_COMMAND};--install;${WORK_DIR}/nexus-build;--prefix;${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};-S;${SOURCE_DIR}/tests/consumer;-B;${WORK_DIR}/consumer-build;-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
    "${CMAKE_COMMAND};--build;${WORK_DIR}/consumer-build"
    "${WORK_DIR}/consumer-build/consumer;${MODEL_DIR}")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${step}\n${out}\n${err}")
  endif()
endforeach()
message(STATUS "consumer printed: ${out}")
# Expected values: what transformers reported for the same checkpoint.
file(READ ${MODEL_DIR}/reference.json ref)
string(JSON family GET "${ref}" model_type)
string(JSON hidden GET "${ref}" values hidden_size)
if(NOT out MATCHES "^${family} ${hidden}\n?$")
  message(FATAL_ERROR "consumer printed '${out}', expected '${family} ${hidden}'")
endif()
