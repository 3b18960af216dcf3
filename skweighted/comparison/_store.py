"""The record of a comparison's finished fits, kept safe on disk as it grows.

``fits.jsonl`` in the report folder is an append-only file of JSON lines:
a header (the run's fingerprint and its list of fits), then one record per
finished (strategy, fold) fit, appended and flushed to disk the moment the
fit finishes. Every line carries the SHA-256 of its own content, so a line
that was cut short by a crash, or altered afterwards, is never read back as
a result: it fails its checksum, is reported, and its fit runs again. The
header is written once, to a temporary file that is then renamed, so it is
either complete or absent.
"""

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._fingerprint import describe_differences

__all__ = ["FILENAME", "FitRecord", "RecordStore", "ResumeError"]

#: Name of the records file inside the report folder.
FILENAME = "fits.jsonl"
_FORMAT = 1


class ResumeError(ValueError):
    """The records in the folder cannot be resumed with these settings."""


@dataclass(frozen=True)
class FitRecord:
    """The outcome of one (strategy, fold) fit.

    ``scores`` maps each reported metric to its value (``None`` when the fit
    failed); ``error_type`` and ``error_message`` say why it failed;
    ``reliability`` holds the rows ``[class, bin, count, predicted,
    observed]`` of the test rows' reliability table (``None`` when the
    strategy gave no probabilities, or for a record written without it);
    ``confusion`` the confusion matrix of the test rows, a list of rows
    (true class) of counts (predicted class), in the order of the sorted
    classes (``None`` when not recorded).
    """

    strategy: str
    fold: int
    scores: dict | None
    fit_time: float
    score_time: float
    error_type: str | None = None
    error_message: str | None = None
    reliability: list | None = None
    confusion: list | None = None
    epochs: float | None = None

    @property
    def key(self):
        return self.strategy, self.fold

    @property
    def failed(self):
        return self.error_type is not None

    def to_dict(self):
        return {
            "kind": "fit",
            "strategy": self.strategy,
            "fold": self.fold,
            "scores": self.scores,
            "fit_time": self.fit_time,
            "score_time": self.score_time,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "reliability": self.reliability,
            "confusion": self.confusion,
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, d):
        scores = d["scores"]
        if scores is not None:
            scores = {str(k): _number(v) for k, v in scores.items()}
        if (scores is None) == (d["error_type"] is None):
            raise ValueError("a record holds either scores or an error")
        return cls(
            strategy=str(d["strategy"]),
            fold=int(d["fold"]),
            scores=scores,
            fit_time=_number(d["fit_time"]),
            score_time=_number(d["score_time"]),
            error_type=d["error_type"],
            error_message=d["error_message"],
            reliability=_reliability(d.get("reliability")),
            confusion=_confusion(d.get("confusion")),
            epochs=None if d.get("epochs") is None else _number(d["epochs"]),
        )


def _reliability(rows):
    """Reliability rows read back: ``[label, int, int, float, float]`` each."""
    if rows is None:
        return None
    return [
        [label, int(b), int(n), _number(pred), _number(obs)]
        for label, b, n, pred, obs in rows
    ]


def _confusion(rows):
    """A confusion matrix read back: a square list of lists of ints."""
    if rows is None:
        return None
    matrix = [[int(n) for n in row] for row in rows]
    if any(len(row) != len(matrix) for row in matrix):
        raise ValueError("a confusion matrix is square")
    return matrix


def _number(v):
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"not a number: {v!r}")
    return float(v)


def _digest(payload):
    return hashlib.sha256(payload.encode()).hexdigest()


def _encode(obj):
    """One line: the object and the checksum of its canonical JSON."""
    body = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return json.dumps({"sha256": _digest(body), "body": obj}, sort_keys=True) + "\n"


def _decode(line):
    """The object of a line, or ``None`` when the line is damaged."""
    if not line.endswith("\n"):
        return None  # cut short: the write never finished
    try:
        wrapped = json.loads(line)
        body = wrapped["body"]
        intact = wrapped["sha256"] == _digest(
            json.dumps(body, sort_keys=True, separators=(",", ":"))
        )
    except (ValueError, KeyError, TypeError):
        return None
    return body if intact and isinstance(body, dict) else None


def _write_atomically(path, text):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RecordStore:
    """The records file of one run, opened for appending.

    Use :meth:`open`; it checks the fingerprint, reads back the valid
    records and leaves the file holding only those, ready for :meth:`append`.
    """

    def __init__(self, path, tasks):
        self.path = Path(path)
        self.tasks = tasks

    @classmethod
    def open(cls, folder, fingerprint, tasks, *, resume):
        """Start or resume the run recorded in ``folder``.

        Parameters
        ----------
        folder : str or path
            The report folder (created when missing).
        fingerprint : dict
            What identifies the run (see ``_fingerprint.fingerprint``).
        tasks : list of (str, int)
            Every (strategy, fold) the run fits, in order.
        resume : bool
            Keep the finished fits of a run with the same fingerprint.
            Without it, a complete earlier run is replaced; an unfinished one
            is refused, so that its fits are never thrown away by accident.

        Returns
        -------
        store : RecordStore
        records : dict
            (strategy, fold) -> :class:`FitRecord`, the finished fits kept.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / FILENAME
        store = cls(path, [list(t) for t in tasks])
        header = {
            "kind": "header",
            "format": _FORMAT,
            "fingerprint": fingerprint,
            "tasks": store.tasks,
        }
        if not path.exists():
            _write_atomically(path, _encode(header))
            return store, {}
        old_header, records, damaged = store._read()
        wanted = {tuple(t) for t in store.tasks}
        old_tasks = {tuple(t) for t in (old_header or {}).get("tasks", [])}
        if not resume:
            if old_header is not None and (old_tasks - set(records) or damaged):
                done = len(records)
                raise ResumeError(
                    f"{path} holds {done} finished fit(s) of an unfinished run; "
                    "resume it (resume=True, or --resume on the command line), "
                    "or delete that file or choose another folder to start afresh."
                )
            _write_atomically(path, _encode(header))
            return store, {}
        if old_header is None:
            raise ResumeError(
                f"cannot resume from {path}: its header is damaged, so the settings "
                "of its fits are unknown. Delete that file or choose another "
                "folder to start afresh."
            )
        differences = describe_differences(old_header["fingerprint"], fingerprint)
        if differences or old_tasks != wanted:
            differences = differences or ["the list of fits differs"]
            raise ResumeError(
                f"cannot resume from {path}: the recorded run differs from this "
                "one: "
                + "; ".join(differences)
                + ". Use the same data and settings, or delete that file or choose "
                "another folder to start afresh."
            )
        if damaged:
            warnings.warn(
                f"{path}: {len(damaged)} damaged record(s) (line(s) "
                f"{', '.join(map(str, damaged[:10]))}) cannot be trusted and are "
                "dropped; their fits run again.",
                RuntimeWarning,
                stacklevel=3,
            )
        records = {k: r for k, r in records.items() if k in wanted}
        # Rewrite without the damaged lines, so that appends start on a clean line.
        _write_atomically(
            path,
            _encode(header)
            + "".join(
                _encode(records[tuple(t)].to_dict())
                for t in store.tasks
                if tuple(t) in records
            ),
        )
        return store, records

    def _read(self):
        """``(header or None, records, damaged line numbers)``."""
        # undecodable bytes become U+FFFD, which then fails the checksum
        with open(self.path, encoding="utf-8", errors="replace", newline="\n") as f:
            lines = f.readlines()
        header = _decode(lines[0]) if lines else None
        if header is not None and (
            header.get("kind") != "header" or header.get("format") != _FORMAT
        ):
            header = None
        records, damaged = {}, []
        for number, line in enumerate(lines[1:], start=2):
            body = _decode(line)
            try:
                if body is None or body.get("kind") != "fit":
                    raise ValueError
                record = FitRecord.from_dict(body)
            except (ValueError, KeyError, TypeError):
                damaged.append(number)
                continue
            records[record.key] = record
        return header, records, damaged

    def append(self, record):
        """Append one record and flush it to disk before returning."""
        with open(self.path, "a", encoding="utf-8", newline="\n") as f:
            f.write(_encode(record.to_dict()))
            f.flush()
            os.fsync(f.fileno())
