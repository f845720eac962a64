# The participant-journey fixtures (an enrolled participant, a coordinator, a sealed list).
from tests.participants.conftest import coordinator, enrol, sealed_list  # noqa: F401
