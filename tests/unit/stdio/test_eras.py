"""EraRouter: the boot child serves the first era to arrive; the other era gets its own
child on first need; decided by the request, whatever any server answers."""

from tunnel_client.mcp.stdio.eras import Era, EraRouter, StdioBinding, era_of

MODERN_META = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


class FakeSupervisor:
    label = ""

    def claim(self, label):
        self.label = label


class FakeSession:
    def __init__(self, era):
        self.era = era.value if era else ""
        self.supervisor = FakeSupervisor()
        self.started = 0

    def start(self, scheduler):
        self.started += 1


def router():
    made = []

    def new_session(era):
        made.append(FakeSession(era))
        return made[-1]

    eras = EraRouter("main", new_session)
    eras.start(scheduler=None)
    return eras, made


def test_the_era_of_a_request_is_read_from_the_request():
    assert era_of({"method": "server/discover"}) is Era.MODERN
    assert era_of({"method": "tools/list", "params": MODERN_META}) is Era.MODERN
    assert era_of({"method": "tools/list"}) is Era.LEGACY
    assert era_of({"method": "initialize", "params": {"_meta": "junk"}}) is Era.LEGACY
    assert era_of(None) is Era.LEGACY


def test_the_first_era_claims_the_boot_child_and_the_other_gets_a_new_one():
    eras, made = router()
    assert len(made) == 1 and made[0].started == 1
    modern = eras.child_for(Era.MODERN)
    assert modern is made[0] and modern.era == "2026-07-28"
    assert modern.supervisor.label == "2026-07-28"
    legacy = eras.child_for(Era.LEGACY)
    assert legacy is made[1] and legacy.started == 1 and legacy.era == "legacy"
    assert eras.child_for(Era.MODERN) is modern and eras.child_for(Era.LEGACY) is legacy
    assert len(made) == 2 and eras.sessions() == [modern, legacy]


def test_one_era_only_keeps_one_child():
    eras, made = router()
    for _ in range(3):
        assert eras.child_for(Era.LEGACY) is made[0]
    assert len(made) == 1


def test_the_router_starts_the_boot_child_with_its_scheduler_and_lists_it_first():
    started_with = []

    class Recording(FakeSession):
        def start(self, scheduler):
            started_with.append(scheduler)

    made = []
    eras = EraRouter("main", lambda era: made.append(Recording(era)) or made[-1])
    assert eras.sessions() == []
    eras.start("the-scheduler")
    eras.child_for(Era.MODERN)
    eras.child_for(Era.LEGACY)
    assert started_with == ["the-scheduler", "the-scheduler"]
    assert eras.sessions() == made  # the boot child stays first


def test_a_binding_not_yet_started_is_unhealthy_and_describes_no_children():
    binding = StdioBinding("main", ["true"], {})
    check = binding.health()
    assert check.ok is False and check.reason == "channel main: not started"
    assert binding.describe() == {"name": "main", "transport_kind": "stdio", "children": []}
