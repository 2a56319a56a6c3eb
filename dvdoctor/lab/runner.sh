#!/bin/sh
# Run one lab pod's container command and leave its outcome on disk (see runtime.launch).
#
#   setsid -f /bin/sh runner.sh PODDIR CWD ARGV...   (the environment is the container's, and nothing else)
#
# `setsid -f` forks, makes the child lead a new session and exits, so this runner is nobody's child
# (reparented: no long-lived dvdoctor process collects zombies) and deleting the pod kills its whole
# process group. The runner writes its own pid first: the pid of the session's leader once it runs
# this script (after every exec), which the lab waits for. Then it runs ARGV in CWD, stdin from
# /dev/null, stdout and stderr appended to PODDIR/log, and writes the exit code (128+N for signal N)
# to PODDIR/exitcode. A pod whose runner died without an exit code was killed (job deletion,
# deadline): the lab reads it as 137. POSIX sh and a few small programs a pod: the lab starts about a
# thousand pods in the test suite, and a Python interpreter per pod cost ten times as much.
# Files appear whole (a temp file, then a rename) with mode 0644, as the lab's other files do.
# The runner's own tools by the standard PATH (`command -p`): the container's PATH is the command's.
set -u -C  # -C (noclobber): a temp file is created new, never one that exists (or a link) written
umask 022

put() { # FILE TEXT: FILE appears whole, from a temp file only this process creates
  printf '%s\n' "$2" > "$1.$$.tmp" && command -p mv -f "$1.$$.tmp" "$1"
}

pod=$1 cwd=$2
shift 2
put "$pod/pid" "$$"
# A command that cannot start is like a container's exec failure: a line in the log, 127.
# The shell's own PWD (which it exports) is unset: the command gets the container's env only.
if cd "$cwd" 2>/dev/null && command -v "$1" >/dev/null 2>&1; then
  unset PWD OLDPWD
  "$@" </dev/null >>"$pod/log" 2>&1
  rc=$?
else
  printf 'exec %s: No such file or directory\n' "$1" >>"$pod/log"
  rc=127
fi
put "$pod/exitcode" "$rc"
