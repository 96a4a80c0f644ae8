#!/bin/sh
# tick.sh TICKS LOG: a job that records its own run in LOG: a line every 0.1 s while it runs (TICKS of them),
# then one ending in "end". Each line: job id, attempt, worker id, the time (epoch seconds), tick|end.
# The harness reads the runs back from these lines: when each started and last ran, and whether it ended.
i=0
while [ "$i" -lt "$1" ]; do
    echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT $QUEUECTL_WORKER_ID $(date +%s.%N) tick" >> "$2"
    sleep 0.1
    i=$((i + 1))
done
echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT $QUEUECTL_WORKER_ID $(date +%s.%N) end" >> "$2"
