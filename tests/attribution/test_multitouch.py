from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution.crediting.multitouch import MODELS, affiliate_credit, credit_shares
from tests.attribution.test_crediting import IDFA, T0, af_install, click

AT = datetime(2026, 11, 10, tzinfo=UTC)
TOUCHES = [
    AT - timedelta(days=6),
    AT - timedelta(days=3),
    AT - timedelta(days=1),
    AT - timedelta(hours=1),
]


def test_first_and_last_click_give_everything_to_one_touch():
    assert credit_shares(TOUCHES, AT, "first_click") == [1, 0, 0, 0]
    assert credit_shares(TOUCHES, AT, "last_click") == [0, 0, 0, 1]


def test_linear_splits_evenly():
    assert credit_shares(TOUCHES, AT, "linear") == [Decimal("0.25")] * 4


def test_position_based_gives_forty_percent_to_each_end():
    assert credit_shares(TOUCHES, AT, "position_based") == [
        Decimal("0.4"),
        Decimal("0.1"),
        Decimal("0.1"),
        Decimal("0.4"),
    ]
    assert credit_shares(TOUCHES[:2], AT, "position_based") == [Decimal("0.5"), Decimal("0.5")]


def test_time_decay_halves_the_weight_every_seven_days():
    shares = credit_shares([AT - timedelta(days=7), AT], AT, "time_decay")
    assert shares == [Decimal("0.333333"), Decimal("0.666667")]


def test_an_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        credit_shares(TOUCHES, AT, "u_shaped")


@given(
    model=st.sampled_from(MODELS),
    ages=st.lists(st.integers(min_value=0, max_value=30 * 86400), min_size=1, max_size=30),
)
def test_shares_always_add_up_to_exactly_one(model, ages):
    touches = sorted(AT - timedelta(seconds=a) for a in ages)
    shares = credit_shares(touches, AT, model)
    assert sum(shares) == 1
    assert all(s >= 0 for s in shares)


@pytest.mark.django_db
def test_reports_split_an_install_across_the_affiliates_who_clicked(
    client, alice, charlie, campaign, appsflyer
):
    click(client, charlie, campaign, at=T0, idfa=IDFA)
    last = click(client, alice, campaign, at=T0 + timedelta(hours=2), idfa=IDFA)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=3), click_id=last.click_id)

    assert affiliate_credit([conversion], "last_click") == {charlie.pk: 0, alice.pk: 1}
    assert affiliate_credit([conversion], "linear") == {
        charlie.pk: Decimal("0.5"),
        alice.pk: Decimal("0.5"),
    }
    assert conversion.affiliate == alice  # money still follows the campaign's last click
