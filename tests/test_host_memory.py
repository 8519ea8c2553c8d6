"""common/host_memory.py: memory freed by a CPU process is reused, not faulted in again."""
import os
import subprocess
import sys

from common import host_memory
from conftest import ROOT

# Mallocs, fills and frees 64 MB six times, as TensorFlow's CPU allocator does a step's
# buffers (numpy would ask for huge pages); prints the page faults of the last five.
_REALLOCATE = '''
import ctypes, resource, sys
from common import host_memory
if sys.argv[1] == 'kept':
    assert host_memory.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def step():
    buffer = libc.malloc(64 << 20)
    ctypes.memset(buffer, 1, 64 << 20)
    libc.free(buffer)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
before = faults()
for _ in range(5):
    step()
print(faults() - before)
'''


def _faults(how, env=None):
    out = subprocess.run([sys.executable, '-c', _REALLOCATE, how], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, universal_newlines=True,
                         env=dict(os.environ, **(env or {}))).stdout
    return int(out.strip())


def test_freed_memory_is_reused_instead_of_faulted_in_again():
    # glibc unmaps each block when it is freed: 4 KiB pages, or 2 MB ones where transparent
    # huge pages are always on
    default = _faults('default')
    assert default >= 5 * (64 << 20) // (2 << 20)
    assert _faults('kept') < 0.01 * default
    # the same settings as environment variables, for other programs (the benchmarks' peers)
    assert _faults('default', env=host_memory.ENVIRONMENT) < 0.01 * default
