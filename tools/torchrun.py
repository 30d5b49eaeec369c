"""torchrun for ``./dist_train.sh`` and ``./dist_test.sh``: the same options
and runs, but a failed run ends with what the failed process said.

torchrun follows a process that exited with an error by a log line and a
traceback of its own ending in a ~35-line ``ChildFailedError`` summary,
all printed after the process's ``error: ...`` line (or its traceback).
A process that failed has said why, so here the launcher only exits with
its status. A process killed by a signal says nothing, so the launcher
says it, in one line.
"""
import logging
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

# What torchrun logs as it stops the others after a failure: the failure
# itself, and the SIGTERM each remaining process of the node is sent.
_AFTER_A_FAILURE = ('failed (exitcode: ', 'Sending process ')


class _AfterAFailure(logging.Filter):

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_AFTER_A_FAILURE)


def main() -> None:
    logging.getLogger('torch.distributed.elastic.multiprocessing.api'
                      ).addFilter(_AfterAFailure())
    try:
        run(parse_args(sys.argv[1:]))
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        if failure.exitcode >= 0:
            sys.exit(failure.exitcode)
        print(
            f'error: process {rank} of the distributed run (pid '
            f'{failure.pid}) was killed by signal {failure.signal_name()} '
            'without a word (a SIGKILL is often the out-of-memory killer: '
            'see dmesg); the other processes were stopped.',
            file=sys.stderr)
        sys.exit(128 - failure.exitcode)


if __name__ == '__main__':
    main()
