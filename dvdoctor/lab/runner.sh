#!/bin/sh
# Run one lab pod's container command, detached, and leave its outcome on disk (see runtime.launch).
#
#   sh runner.sh start PODDIR CWD ARGV...   (the environment is the container's, and nothing else)
#
# `start` starts `run` in a new session and exits once the pid of that session's leader is on disk,
# so the runner is nobody's child (reparented: no long-lived dvdoctor process collects zombies) and
# deleting the pod kills its whole process group. `run` runs ARGV in CWD, stdin from /dev/null,
# stdout and stderr appended to PODDIR/log, and writes the exit code (128+N for signal N) to
# PODDIR/exitcode. A pod whose runner died without an exit code was killed (job deletion, deadline):
# the lab reads it as 137. POSIX sh, a few small programs a pod: the lab starts about a thousand
# pods in the test suite, and a Python interpreter per pod cost ten times as much.
# Files appear whole (a temp file, then a rename) with mode 0644, as the lab's other files do.
# The runner's own tools by the standard PATH (`command -p`): the container's PATH is the command's.
set -u -C  # -C (noclobber): a temp file is created new, never one that exists (or a link) written
umask 022

put() { # FILE TEXT: FILE appears whole, from a temp file only this process creates
  printf '%s\n' "$2" > "$1.$$.tmp" && command -p mv -f "$1.$$.tmp" "$1"
}

mode=$1 pod=$2 cwd=$3
shift 3
case "$mode" in
  start)
    # a background job of a non-interactive shell is no process group leader, so setsid(1) makes
    # this very process (the pid in $!) the new session's leader, without forking again
    command -p setsid /bin/sh "$0" run "$pod" "$cwd" "$@" </dev/null >/dev/null 2>&1 &
    # the lab waits for this parent only: the pid is on disk before it returns, or a busy machine
    # lets the lab look for the pod's process first, find none, and call the pod killed (137)
    put "$pod/pid" "$!"
    ;;
  run)
    # a command that cannot start is like a container's exec failure: a line in the log, 127
    # the shell's own PWD (which it exports) is unset: the command gets the container's env only
    if cd "$cwd" 2>/dev/null && command -v "$1" >/dev/null 2>&1; then
      unset PWD OLDPWD
      "$@" </dev/null >>"$pod/log" 2>&1
      rc=$?
    else
      printf 'exec %s: No such file or directory\n' "$1" >>"$pod/log"
      rc=127
    fi
    put "$pod/exitcode" "$rc"
    ;;
esac
