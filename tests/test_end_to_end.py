"""The theorem's pattern on a small independent setting, trained for real on the CPU."""

import time

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.experiments import run_numerical


def test_mmcl_recovers_exactly_the_selected_semantics():
    start = time.perf_counter()
    # Every training size is pinned here, so that retuning the cpu profile cannot move this test.
    prof = get_profile("cpu").with_overrides(steps=2500, batch_size=256, hidden=64, depth=2, lr=3e-3,
                                             warmup=0.05, probe_train=4000, probe_test=4000,
                                             probe_steps=500)
    run = run_numerical([CaptionBias({1, 2}, n_semantic=4)], profile=prof, seeds=0,
                        progress=False, device="cpu")
    r2 = run.table(probe="mlp", encoder="x")["sel [2], pert ∅"]
    print(r2.round(3).to_dict(), f"{time.perf_counter() - start:.0f} s")
    assert r2["s1"] >= 0.8 and r2["s2"] >= 0.8
    # 2,500 steps leave a finite-training residue: s4 sits at about 0.2 for this seed with any
    # learning rate or batch tried (0.195-0.23), so the bound is 0.3, still far below the ~0.9
    # of a selected factor (chapters 2-3 show the residue shrinking with longer training).
    assert r2["s3"] <= 0.3 and r2["s4"] <= 0.3
    assert min(r2["s1"], r2["s2"]) - max(r2["s3"], r2["s4"]) >= 0.5
    assert r2["mx"] <= 0.2 and r2["mt"] <= 0.2
