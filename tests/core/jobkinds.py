"""Job classes used by the core tests (importable, so they pickle by reference)."""

from __future__ import annotations

from plams_cli import MultiJob, SingleJob


class EchoJob(SingleJob):
    """Writes its input value to ``out``; appends a line to ``settings.input.counter`` if set."""

    def get_input(self) -> str:
        return str(self.settings.input.get("value", ""))

    def get_runscript(self) -> str:
        lines = []
        counter = self.settings.input.get("counter")
        if counter:
            lines.append(f"echo run >> '{counter}'")
        sleep = self.settings.input.get("sleep")
        if sleep:
            lines.append(f"sleep {sleep}")
        lines.append(f"cat '{self.name}.in' > out")
        lines.append(f"echo 'result {self.settings.input.get('value', '')}'")
        code = self.settings.input.get("exit")
        if code:
            lines.append(f"echo 'failing on purpose' >&2; exit {code}")
        return "\n".join(lines)


class CheckedJob(EchoJob):
    """A job whose check() fails when the output says so."""

    def check(self) -> bool:
        return "bad" not in self.results.read_file("out")


class BrokenPrerunJob(EchoJob):
    """A job whose prerun raises."""

    def prerun(self) -> None:
        raise ValueError("prerun exploded")


class PostrunJob(EchoJob):
    """A job that reads its own results in postrun."""

    def postrun(self) -> None:
        self.seen = self.results.read_file("out")


class PairJob(MultiJob):
    """A MultiJob that adds a second round of children once, through new_children()."""

    def new_children(self):  # type: ignore[no-untyped-def]
        if getattr(self, "_round_two", False):
            return None
        self._round_two = True
        child = EchoJob(name="late")
        child.settings.input.value = "late child"
        return [child]
