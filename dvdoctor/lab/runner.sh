#!/bin/sh
# Run one lab pod's container command and leave its outcome on disk (see runtime.launch).
#
#   /bin/sh runner.sh PODDIR CWD ARGV...   (the environment is the container's, and nothing else)
#
# The lab starts it as the leader of a new session (so deleting the pod kills its whole process
# group, and a terminal's Ctrl-C to dvdoctor never reaches it). It writes its own pid first, then runs
# ARGV in CWD, stdin from /dev/null, stdout and stderr appended to PODDIR/log, and writes the exit
# code (128+N for signal N) to PODDIR/exitcode. A pod whose runner died without an exit code was
# killed (job deletion, deadline): the lab reads it as 137, and an exit code file still empty when
# the runner is gone (killed while writing it) the same. POSIX sh and no program of its own: the lab
# starts about a thousand pods in the test suite, and every process a pod costs is counted there.
set -u -C  # -C (noclobber): the pid and exit code files are created new, never one that exists (or a link) written
umask 022

pod=$1 cwd=$2
shift 2
printf '%s\n' "$$" > "$pod/pid"  # one write of a few bytes: read whole, or read empty (the lab waits)
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
printf '%s\n' "$rc" > "$pod/exitcode"  # one write of a few bytes: read whole, or read empty
