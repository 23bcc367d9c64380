"""Segment insights: what each segment buys, where, how it answers campaigns, who it is.

``assistant.model.profiling.compute_profiles`` runs at training time and stores aggregates only (never a customer)
in the model card under ``card["profiles"]``:

- per segment and for the whole base (``"base"``): size and share; mean and median of the seven
  fields and of every numeric raw column (except ID, Z_CostContact, Z_Revenue); product mix
  (each line's share of the group's total spending); channel mix (web, catalogue and store as
  shares of all purchases) and the share of purchases bought on a deal (NumDealsPurchases is a
  discount flag across channels, not a fourth channel); education and marital status
  distributions (Marital_Status "Alone", "Absurd", "YOLO" grouped as "Other"; Education
  "2n Cycle" is master's level but keeps its label); share and count with children at home
  (Kidhome + Teenhome > 0); tenure in days up to the latest Dt_Customer; acceptance rate of each
  past campaign, of any of campaigns 1-5 and of the last one (Response); complaint rate;
- ``lift``: the segment's figure divided by the base's, for every mean, share and rate
  (``None`` when the base figure is 0);
- ``distributions`` (binned counts of the seven fields by segment) and ``relationships`` (mean
  spending by income band, age band, education and children at home) for reports made from the
  card alone.

Everything a person reads (labels, summaries, chat answers, plot titles) comes from
``knowledge/insights.yaml``, validated by :class:`InsightsTexts` at load. Nothing is read at
import time; the texts are loaded on first use and cached on the knowledge base.
"""
