#!/bin/sh
# The probe every runtime runs (tests/support/runc_diff.h): one normalised "field: value" line
# per observation, so that runc's output and sealroot-boot's compare line by line. Nothing
# printed may depend on pids, timestamps or sizes the kernel chooses.
# Environment: HOST_NS_<type>=<inode> for the host's namespaces, HOST_PORT (a listener on the
# host's 127.0.0.1), PROBE_EXTRA (memory, pids: the resource checks).

grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status

for ns in pid mnt net ipc uts user cgroup; do
  inode=$(readlink /proc/self/ns/$ns | tr -dc 0-9)
  eval host=\$HOST_NS_$ns
  [ "$inode" = "$host" ] && echo "ns $ns: host" || echo "ns $ns: own"
done
echo "hostname: $(hostname)"
echo "domainname: $(cat /proc/sys/kernel/domainname)"
echo "uid_map: $(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')"
echo "id: $(id)"
echo "umask: $(umask)"
echo "oom_score_adj: $(cat /proc/self/oom_score_adj)"
echo "nofile: $(ulimit -n)"

# Mount points, types and per-mount options (super-block options carry sizes and ids).
awk '{ for (i = 7; $i != "-"; i++); print "mount " $5 " " $(i + 1) " " $6 }' /proc/self/mountinfo | sort

for p in /proc/kcore /proc/keys /proc/timer_list /proc/acpi /proc/scsi /sys/firmware; do
  if [ -d $p ]; then echo "masked $p: dir entries $(ls -A $p 2>&1 | wc -l)"
  elif [ -e $p ]; then echo "masked $p: bytes $(head -c 64 $p 2>&1 | wc -c)"
  else echo "masked $p: absent"; fi
done
for p in /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/sys/net/ipv4/ip_forward; do
  (echo x > $p) 2>/dev/null && echo "write $p: ok" || echo "write $p: refused"
done
(echo x > /probe-write) 2>/dev/null && echo "write /: ok" || echo "write /: refused"

for f in /dev/* /dev/pts/* /dev/mqueue /dev/shm; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -L "$f" ]; then echo "dev $f -> $(readlink $f)"
  else echo "dev $(stat -c '%A %u %g %t:%T' $f) $f"; fi
done

mknod /dev/probe-loop b 7 0 2>/dev/null && echo "mknod b 7 0: ok" || echo "mknod b 7 0: refused"
mkdir /dev/probe-dir 2>&1 | sed 's/^mkdir: //;s/^/mkdir: /' ; [ -d /dev/probe-dir ] && echo "mkdir: ok"
if nc -w 2 127.0.0.1 "$HOST_PORT" </dev/null >/dev/null 2>&1; then echo "connect host loopback: ok"
else echo "connect host loopback: refused"; fi
ip link 2>/dev/null | grep -o '^[0-9]*: [a-z0-9]*' | sed 's/^[0-9]*: /link /'

case " $PROBE_EXTRA " in *" memory "*)
  echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
  sh -c 'x=$(head -c 200000000 /dev/zero | tr "\0" a); echo survived' 2>/dev/null
  echo "allocation past the limit: exit $?"
esac
case " $PROBE_EXTRA " in *" pids "*)
  echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max)"
  # The shell that forks dies at the first refused fork; the kernel counts refusals in "max".
  sh -c 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i + 1)); done' 2>/dev/null
  [ "$(sed -n 's/^max //p' /sys/fs/cgroup/pids/pids.events)" -gt 0 ] && echo "fork bomb: stopped at the limit"
  killall sleep 2>/dev/null
esac
exit 0
