"""EQ-5D-5L value sets as data (the format: ``closeout.models.value_set_errors``). Another
country's set is one more entry here, or pasted into the trial's economic policy in admin.

Each set is ``1 - sum of decrements``: one decrement per dimension and level (mobility, self-care,
usual activities, pain/discomfort, anxiety/depression; level 1 = no problems costs nothing), plus
any extra term the publication's model has. Coefficients as published (checked against the eq5d R
package's table of EQ-VT value sets, fragla/eq5d data-raw/VT.csv):
"""

from __future__ import annotations

from typing import Any

ValueSet = dict[str, Any]

# Devlin NJ, Shah KK, Feng Y, Mulhern B, van Hout B. Valuing health-related quality of life: an
# EQ-5D-5L value set for England. Health Economics 2018;27(1):7-22. doi:10.1002/hec.3564
# (the hybrid model; 55555 = -0.285).
ENGLAND_2018: ValueSet = {
    "name": "EQ-5D-5L value set for England (Devlin et al. 2018)",
    "source": "Devlin NJ, Shah KK, Feng Y, Mulhern B, van Hout B. Valuing health-related quality of life: an EQ-5D-5L "
    "value set for England. Health Economics 2018;27(1):7-22. doi:10.1002/hec.3564",
    "start": 1.0,
    "intercept": 0.0,
    "decrements": [
        [0.0, 0.058, 0.076, 0.207, 0.274],  # mobility
        [0.0, 0.050, 0.080, 0.164, 0.203],  # self-care
        [0.0, 0.050, 0.063, 0.162, 0.184],  # usual activities
        [0.0, 0.063, 0.084, 0.276, 0.335],  # pain / discomfort
        [0.0, 0.078, 0.104, 0.285, 0.289],  # anxiety / depression
    ],
    "any_level": {},
}

# Norman R, Mulhern B, Lancsar E, Lorgelly P, Ratcliffe J, Street D, Viney R. The use of a discrete
# choice experiment including both duration and dead for the development of an EQ-5D-5L value set
# for Australia. PharmacoEconomics 2023;41(4):427-438. doi:10.1007/s40273-023-01243-0
# (N5: any dimension at level 5; 55555 = -0.301).
AUSTRALIA_2023: ValueSet = {
    "name": "EQ-5D-5L value set for Australia (Norman et al. 2023)",
    "source": "Norman R, Mulhern B, Lancsar E, Lorgelly P, Ratcliffe J, Street D, Viney R. The use of a discrete choice "
    "experiment including both duration and dead for the development of an EQ-5D-5L value set for Australia. "
    "PharmacoEconomics 2023;41(4):427-438. doi:10.1007/s40273-023-01243-0",
    "start": 1.0,
    "intercept": 0.0,
    "decrements": [
        [0.0, 0.039, 0.067, 0.237, 0.242],  # mobility
        [0.0, 0.030, 0.058, 0.213, 0.221],  # self-care
        [0.0, 0.000, 0.055, 0.162, 0.162],  # usual activities
        [0.0, 0.044, 0.081, 0.276, 0.285],  # pain / discomfort
        [0.0, 0.032, 0.066, 0.238, 0.238],  # anxiety / depression
    ],
    "any_level": {"5": 0.153},
}

VALUE_SETS: dict[str, ValueSet] = {"england_2018": ENGLAND_2018, "australia_2023": AUSTRALIA_2023}
