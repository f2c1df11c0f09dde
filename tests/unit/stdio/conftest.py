import pytest

from tests.unit.stdio.sessions import Child


@pytest.fixture
def child(tmp_path):
    made = []

    def make(*flags, **kw):
        made.append(Child(tmp_path, *flags, **kw))
        return made[-1]

    yield make
    for each in made:
        each.close()
