#!/usr/bin/env python3
"""usage: plot.py results.json chart.png -> CPU (% of the gateway's core) and gateway-caused
loss (%) against concurrent calls, from the benchmark's ramp."""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

r = json.load(open(sys.argv[1]))
steps = r["ramp"]["steps"]
calls = [s["calls"] for s in steps]
cpu = [s["gateway_cpu_percent"] for s in steps]
loss = [max(s["to_phone"]["loss_or_late_percent"], s["to_bridge"]["loss_or_late_percent"]) for s in steps]
miss = [max(s["to_phone"]["deadline_missed_percent"], s["to_bridge"]["deadline_missed_percent"]) for s in steps]
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(calls, cpu, "o-", color="tab:blue", label="gateway CPU (% of 1 core)")
ax.axhline(85, color="tab:blue", ls=":", lw=1, label="CPU limit 85%")
ax.set_xlabel("concurrent calls (PCMU phone, K=3 Opus speakers)")
ax.set_ylabel("CPU %", color="tab:blue")
ax.set_ylim(0, max(100, max(cpu, default=0) * 1.1))
ax2 = ax.twinx()
ax2.plot(calls, loss, "s-", color="tab:red", label="loss or late (worst direction)")
ax2.plot(calls, miss, "^--", color="tab:orange", label="missed 20 ms deadlines")
ax2.axhline(0.1, color="tab:red", ls=":", lw=1, label="SLO 0.1%")
ax2.set_ylabel("% of packets", color="tab:red")
ax2.set_ylim(0, max(0.5, max(loss + miss, default=0) * 1.2))
h1, l1 = ax.get_legend_handles_labels()
h2, l2 = ax2.get_legend_handles_labels()
ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
ax.set_title(f"jigasi-rs on 1 core: {r['summary']['calls_per_core_at_slo']} calls at the service level")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
