# Installs Nexus into a fresh prefix, builds tests/consumer against it with find_package, runs it.
# Variables: SOURCE_DIR (the Nexus tree), WORK_DIR (scratch), MODEL_DIR (a checkpoint folder).
# The README's C++ snippet must be the one main.cpp compiles.
file(READ ${SOURCE_DIR}/README.md readme)
string(FIND "${readme}" "```cpp\n" b)
string(SUBSTRING "${readme}" ${b} -1 readme)
string(FIND "${readme}" "\n```" e)
math(EXPR e "${e} - 7")
string(SUBSTRING "${readme}" 7 ${e} readme_snippet)
file(READ ${SOURCE_DIR}/tests/consumer/main.cpp main_cpp)
string(FIND "${main_cpp}" "// README begin\n" b)
string(FIND "${main_cpp}" "\n// README end" e)
math(EXPR b "${b} + 16")
math(EXPR e "${e} - ${b}")
string(SUBSTRING "${main_cpp}" ${b} ${e} main_snippet)
if(NOT readme_snippet STREQUAL main_snippet)
  message(FATAL_ERROR "README.md's C++ snippet differs from tests/consumer/main.cpp's:\n${readme_snippet}\n---\n${main_snippet}")
endif()
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
set(consumer_out "${out}")
# pkg-config: the same package through nexus.pc, with no CMake.
find_program(PKG_CONFIG pkg-config REQUIRED)
find_program(CXX_COMPILER NAMES c++ g++ clang++ REQUIRED)
set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/prefix/share/pkgconfig")
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs nexus RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags --libs nexus failed: ${err}")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
execute_process(COMMAND ${CXX_COMPILER} ${SOURCE_DIR}/tests/consumer/pkg_config.cpp ${flags} -o ${WORK_DIR}/pkg_config
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building with nexus.pc's flags (${flags}) failed:\n${err}")
endif()
execute_process(COMMAND ${WORK_DIR}/pkg_config ${MODEL_DIR} RESULT_VARIABLE rc OUTPUT_VARIABLE pc_out)
# "Hello": SHA-256 from Python's hashlib
if(NOT rc EQUAL 0 OR NOT pc_out MATCHES " 185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969\n$")
  message(FATAL_ERROR "the pkg-config build printed '${pc_out}' (${rc})")
endif()
set(out "${consumer_out}")
# Expected values: what transformers reported for the same checkpoint.
file(READ ${MODEL_DIR}/reference.json ref)
string(JSON family GET "${ref}" model_type)
string(JSON hidden GET "${ref}" values hidden_size)
if(NOT out MATCHES "^${family} ${hidden}\n?$")
  message(FATAL_ERROR "consumer printed '${out}', expected '${family} ${hidden}'")
endif()
