"""`manage.py broadcast_progress [ID] [--once] [--json]`: a broadcast's progress as a live bar
(sent / held / skipped by reason / remaining and how many of those are not due yet, rate,
time left), then its report. Without an id, the newest broadcast."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from broadcasts.models import Broadcast
from broadcasts.selectors import broadcast_progress, broadcast_report


def progress_line(broadcast: Broadcast) -> str:
    p = broadcast_progress(broadcast=broadcast)
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(p.skipped.items())) or "0"
    left = f"{p.seconds_left:.0f}s left" if p.seconds_left is not None else "—"
    return (f"{broadcast.status}: sent {p.sent}, held {p.held}, skipped {skipped}, remaining {p.remaining} "
            f"(scheduled {p.scheduled}); "
            f"{p.rate:.1f}/s, {left}")  # fmt: skip


class Command(BaseCommand):
    help = "Show a broadcast's progress (a live bar until it ends) and its report."

    def add_arguments(self, parser):
        parser.add_argument("broadcast_id", nargs="?")
        parser.add_argument("--once", action="store_true", help="print the progress once and exit")
        parser.add_argument("--json", action="store_true", help="progress and report as JSON, once")
        parser.add_argument("--every", type=float, default=1.0, help="seconds between updates")

    def handle(self, *args, broadcast_id=None, once=False, json=False, every=1.0, **options):
        broadcast = self._broadcast(broadcast_id)
        if json:
            self.stdout.write(_json({
                "id": str(broadcast.pk), "status": broadcast.status,
                "progress": broadcast_progress(broadcast=broadcast).as_data(),
                "report": broadcast_report(broadcast_id=broadcast.pk).as_data(),
            }))  # fmt: skip
            return
        if once:
            self.stdout.write(progress_line(broadcast))
            return
        bar = tqdm(total=max(broadcast_progress(broadcast=broadcast).total, 1), desc=broadcast.name[:30],
                   unit="rcpt", file=self.stderr._out)  # fmt: skip
        while True:
            broadcast.refresh_from_db()
            p = broadcast_progress(broadcast=broadcast)
            bar.total = max(p.total, 1)
            bar.n = p.done
            bar.set_postfix_str(progress_line(broadcast).split(": ", 1)[1], refresh=False)
            bar.refresh()
            if broadcast.status not in (Broadcast.Status.RUNNING, Broadcast.Status.SCHEDULED):
                break
            time.sleep(every)
        bar.close()
        self.stdout.write(progress_line(broadcast))
        report = broadcast_report(broadcast_id=broadcast.pk)
        self.stdout.write("report: " + ", ".join(f"{k} {v}" for k, v in report.as_data().items()))

    def _broadcast(self, broadcast_id: str | None) -> Broadcast:
        broadcasts = Broadcast.objects.all()
        found = broadcasts.filter(pk=broadcast_id).first() if broadcast_id else broadcasts.first()
        if found is None:
            raise CommandError(f"no broadcast {broadcast_id}" if broadcast_id else "no broadcast yet")
        return found


def _json(data) -> str:
    return json.dumps(data, indent=2)
