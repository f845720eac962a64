"""The top layer: pages that combine the features (dashboard, participant page, worklist, history)
and the wiring that runs one feature's step after another's (see ``console.wiring``)."""
