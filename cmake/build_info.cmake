# Writes OUT, a header saying which commit and day the binary is built from. Run at every build
# (not at configure time, which would leave a binary built later naming an older commit); the
# file is rewritten only when its text changes, so an unchanged tree rebuilds nothing.
execute_process(COMMAND git -C ${SRC} describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT commit)
  set(commit "unknown")
endif()
string(TIMESTAMP day "%Y-%m-%d" UTC)
set(text "// Generated at build time by cmake/build_info.cmake.\n#pragma once\n#define LOOPSPY_GIT_COMMIT \"${commit}\"\n#define LOOPSPY_BUILD_DATE \"${day}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
