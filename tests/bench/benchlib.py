"""Helpers shared by the Python phases of tests/bench/run (imported from beside them)."""
import os


def cpu_s(pid):
    """utime + stime of pid in seconds (0.0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def status_kb(pid, key):
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS), 0 when absent."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
