/* A process that looks like a CPython interpreter from outside (it exports _PyRuntime) but is
 * none, for the tests of what loopspy refuses. Built by the tests (tests/integration/conftest.py)
 * with one of:
 *   -DPY_VERSION_HEX_VALUE=0x031000f0  a Py_Version (3.11+) of a version loopspy does not know
 *   -DVERSION_STRING='"3.7.17"'        an older one, named only by its version string (< 3.11)
 *   -DVERSION_STRING='"3.9.18"' -DCONTRADICTED
 *                                      a version string whose layout the process contradicts:
 *                                      its first thread state does not point back at its
 *                                      interpreter
 * Run as `PROGRAM READY_FILE`: it writes READY_FILE and sleeps until killed. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

uint64_t _PyRuntime[512];
#ifdef PY_VERSION_HEX_VALUE
const unsigned int Py_Version = PY_VERSION_HEX_VALUE;
#endif
#ifdef VERSION_STRING
const char *volatile version_string = VERSION_STRING;
#endif
#ifdef CONTRADICTED
static uint64_t fake_interp[64], fake_tstate[64];
#endif

int main(int argc, char **argv)
{
#ifdef CONTRADICTED
    _PyRuntime[32 / 8] = (uint64_t)fake_interp; /* 3.9: _PyRuntime.interpreters.head */
    fake_interp[8 / 8] = (uint64_t)fake_tstate; /* PyInterpreterState.tstate_head */
    fake_tstate[16 / 8] = 0x1234;               /* PyThreadState.interp: not fake_interp */
#endif
    if (argc > 1) {
        FILE *f = fopen(argv[1], "w");
        if (f) {
            fputs("1", f);
            fclose(f);
        }
    }
    for (;;)
        pause();
}
