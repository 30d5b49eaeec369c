"""torchrun ending a failed run with what the failed process said (not a
~35-line ``ChildFailedError`` traceback after its ``error:`` line); only a
process killed by a signal, which says nothing, gets a line from here."""
import logging
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

# What torchrun logs as it stops the others after a failure: the failure,
# and the SIGTERM each remaining process is sent.
_AFTER_A_FAILURE = ('failed (exitcode: ', 'Sending process ')


def main() -> None:
    logging.getLogger(
        'torch.distributed.elastic.multiprocessing.api').addFilter(
            lambda record: not str(record.msg).startswith(_AFTER_A_FAILURE))
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
