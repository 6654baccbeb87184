from tests.helpers import balance, buy, join


def test_a_purchase_earns_points_and_a_stamp(sessions, program, now):
    member = join(sessions, program, now)
    result = buy(sessions, program, member, 300, now)
    assert result.points == 10
    assert result.stamps == 2  # one visit stamp and one starter stamp
    assert balance(sessions, member) == 10
