"""The floor's table: one durable row per request, nothing else."""

from __future__ import annotations

from django.db import models


class BenchRow(models.Model):
    name = models.CharField(max_length=100)
    number = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} {self.number}"
