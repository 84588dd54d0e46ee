"""labgrid strategy for boards that rvbuild flashes and watches.

`rvbuild lab labgrid BOARD --port P -o env.yaml` writes an environment that imports this file
and configures `RvbuildStrategy`. Its states:

- ``off``: the console is released (and the board powered off when the target has a power
  driver);
- ``uboot``: the console is open and U-Boot is at its prompt (power-cycled first when there is
  a power driver);
- ``flashed``: ``rvbuild flash BOARD --port P ...`` wrote every region and read it back, and
  U-Boot is at its prompt again;
- ``booted``: U-Boot's boot command was sent through ``rvbuild monitor BOARD --until MARKER``,
  which exited 0 once the board's init printed its marker.

rvbuild needs the port to itself, so the strategy closes labgrid's console while rvbuild runs.
"""

import enum
import os
import subprocess
import tempfile

import attr
from pexpect import TIMEOUT

from labgrid.factory import target_factory
from labgrid.step import step
from labgrid.strategy import Strategy, StrategyError, never_retry


class Status(enum.Enum):
    unknown = 0
    off = 1
    uboot = 2
    flashed = 3
    booted = 4


def _tail(text, lines=25):
    return "\n".join(text.splitlines()[-lines:])


@target_factory.reg_driver
@attr.s(eq=False)
class RvbuildStrategy(Strategy):
    """Moves a board between off, uboot, flashed and booted with rvbuild."""

    bindings = {
        "power": {"PowerProtocol", None},
        "console": "SerialDriver",
        "uboot": "UBootDriver",
    }

    board = attr.ib(validator=attr.validators.instance_of(str))
    marker = attr.ib(default="RVBUILD-BOOT-OK", validator=attr.validators.instance_of(str))
    # `rvbuild flash` option (image, spl, fit) -> name in the environment's `images`.
    flash_images = attr.ib(default=attr.Factory(dict), validator=attr.validators.instance_of(dict))
    flash_timeout = attr.ib(default=3600, validator=attr.validators.instance_of(int))
    boot_timeout = attr.ib(default=300, validator=attr.validators.instance_of(int))
    # `rvbuild --project DIR`: where the board file lives ("" for a board shipped with rvbuild).
    project = attr.ib(default="", validator=attr.validators.instance_of(str))
    status = attr.ib(default=Status.unknown)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        # The console log of the last `booted` transition (rvbuild monitor --log).
        self.boot_log = None

    # ---------------------------------------------------------------- helpers
    def _rvbuild(self):
        env = self.target.env
        tool = env.config.get_tool("rvbuild") if env else "rvbuild"
        return [tool, "--project", self.project] if self.project else [tool]

    def _port(self):
        return self.console.port.port, str(self.console.port.speed)

    def _release_console(self):
        # Deactivating the console deactivates the U-Boot driver above it too.
        self.target.deactivate(self.console)

    def _activate_uboot(self, attempts=3):
        # UBootDriver checks the prompt with a 2 s echo test; a slow or loaded console can miss
        # it once, so the check is repeated before the state counts as failed.
        for attempt in range(1, attempts + 1):
            try:
                self.target.activate(self.uboot)
                return
            except TIMEOUT:
                if attempt == attempts:
                    raise
                self.logger.warning("no U-Boot prompt yet (attempt %d of %d)", attempt, attempts)

    def _run(self, args, timeout, what):
        try:
            done = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            out = (e.output or b"").decode("utf-8", "replace")
            raise StrategyError(f"{what} did not finish within {timeout} s:\n{_tail(out)}") from e
        out = done.stdout.decode("utf-8", "replace")
        self.logger.info("%s: exit %d\n%s", what, done.returncode, _tail(out, 10))
        if done.returncode != 0:
            raise StrategyError(f"{what} failed (exit {done.returncode}):\n{_tail(out)}")
        return out

    # ---------------------------------------------------------------- actions
    @step()
    def flash(self):
        """Writes the board's images with `rvbuild flash` (the console must be released)."""
        port, speed = self._port()
        args = self._rvbuild() + ["flash", self.board, "--port", port, "--baud", speed]
        args += ["--timeout", "60"]
        for option, name in sorted(self.flash_images.items()):
            args += [f"--{option}", self.target.env.config.get_image_path(name)]
        return self._run(args, self.flash_timeout, "rvbuild flash")

    @step()
    def boot_to_marker(self):
        """Sends U-Boot's boot command through `rvbuild monitor`, which waits for the marker."""
        port, speed = self._port()
        fd, self.boot_log = tempfile.mkstemp(prefix=f"rvbuild-{self.board}-", suffix=".log")
        os.close(fd)
        args = self._rvbuild() + [
            "monitor", self.board, "--port", port, "--baud", speed,
            "--until", self.marker, "--timeout", str(self.boot_timeout), "--log", self.boot_log,
        ]
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        # Type the boot command only once the monitor holds the port: nothing U-Boot prints
        # after it can be missed.
        first = proc.stderr.readline().decode("utf-8", "replace")
        if "connected to" not in first:
            proc.kill()
            rest = proc.communicate()[1].decode("utf-8", "replace")
            raise StrategyError(f"rvbuild monitor did not start: {first}{_tail(rest)}")
        proc.stdin.write((self.uboot.boot_command + "\n").encode())
        proc.stdin.flush()
        try:
            _, err = proc.communicate(timeout=self.boot_timeout + 30)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            raise StrategyError("rvbuild monitor did not end") from e
        err = err.decode("utf-8", "replace")
        self.logger.info("rvbuild monitor: exit %d\n%s", proc.returncode, _tail(err, 10))
        if proc.returncode != 0:
            raise StrategyError(
                f"the board did not reach `{self.marker}` (rvbuild monitor exit {proc.returncode},"
                f" log {self.boot_log}):\n{_tail(err)}"
            )

    # ---------------------------------------------------------------- states
    @never_retry
    @step(args=["status"])
    def transition(self, status):
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            return
        if status == Status.off:
            self._release_console()
            if self.power:
                self.target.activate(self.power)
                self.power.off()
        elif status == Status.uboot:
            if self.power:
                self.transition(Status.off)
            self.target.activate(self.console)
            if self.power:
                self.power.cycle()
            self._activate_uboot()
        elif status == Status.flashed:
            if self.status != Status.uboot:
                self.transition(Status.uboot)
            self._release_console()
            self.flash()
            # Back at the prompt: the flash leaves U-Boot there.
            self.target.activate(self.console)
            self._activate_uboot()
        elif status == Status.booted:
            if self.status not in (Status.uboot, Status.flashed):
                self.transition(Status.flashed)
            self._release_console()
            self.boot_to_marker()
        else:
            raise StrategyError(f"no transition found from {self.status} to {status}")
        self.status = status

    @never_retry
    def force(self, status):
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.uboot:
            self.target.activate(self.console)
            self._activate_uboot()
        elif status == Status.off:
            self._release_console()
        else:
            raise StrategyError(f"can not force state {status}")
        self.status = status
