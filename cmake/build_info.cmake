# Writes build_info.cpp with the current git commit. Runs on every build (so the binary never
# reports a stale commit) but rewrites the file only when its contents change (so nothing
# recompiles needlessly). Inputs: SOURCE_DIR, TEMPLATE, OUTPUT, PROJECT_VERSION,
# CMAKE_CXX_COMPILER_ID, CMAKE_CXX_COMPILER_VERSION, PARLEY_BUILD_TYPE.
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE PARLEY_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT PARLEY_GIT_COMMIT)
  set(PARLEY_GIT_COMMIT "unknown")
endif()
configure_file(${TEMPLATE} ${OUTPUT}.tmp @ONLY)
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
