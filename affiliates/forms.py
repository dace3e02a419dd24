import re
import zoneinfo

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError

from attribution.models import OutboundEndpoint

from . import offers, twofactor
from .models import (
    Affiliate,
    Campaign,
    PaymentDetailsChange,
    TermsVersion,
    TrackingLink,
    is_country_code,
)

ZONES = sorted(zoneinfo.available_timezones())
EU_VAT_PREFIXES = {c.upper() for c in eu_vat.MEMBER_STATES} | {"EL"}
CURRENCIES = ["EUR", "USD", "GBP", "CAD", "AUD", "SEK", "NOK", "CHF", "JPY", "BRL"]


class SignupForm(UserCreationForm):
    name = forms.CharField(max_length=200, label="Company or display name")
    email = forms.EmailField()
    time_zone = forms.ChoiceField(choices=[(z, z) for z in ZONES], initial="UTC")
    currency = forms.ChoiceField(choices=[(c, c) for c in CURRENCIES], initial="EUR")
    website = forms.URLField(required=False, max_length=500, assume_scheme="https")
    traffic_sources = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="SEO, paid search, social, email, apps... and the countries you reach.",
    )
    country = forms.CharField(max_length=2, min_length=2, help_text="ISO code, e.g. DE")
    messenger = forms.CharField(required=False, max_length=100, help_text="e.g. Telegram @yourname")
    company = forms.CharField(required=False, max_length=200, label="Company (legal name)")
    vat_id = forms.CharField(required=False, max_length=32, label="VAT id")
    accept_terms = forms.BooleanField(required=False)
    ref = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, terms: TermsVersion | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.terms = terms
        if terms is None:
            del self.fields["accept_terms"]
        else:
            self.fields["accept_terms"].required = True
            self.fields[
                "accept_terms"
            ].label = f"I accept the program's terms (version {terms.version}, at /terms/)"

    def clean_country(self) -> str:
        country = self.cleaned_data["country"].strip().upper()
        if not is_country_code(country):
            raise forms.ValidationError("Two letters: the ISO code of your country, e.g. DE.")
        return country

    def clean(self) -> dict:
        cleaned = super().clean()
        if not (cleaned.get("website") or (cleaned.get("traffic_sources") or "").strip()):
            self.add_error(
                "traffic_sources", "Tell us your website or where your traffic comes from."
            )
        return cleaned

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    # The form never says that a username or an email has an account: that would tell anyone
    # who is an affiliate here. ``services.affiliate_apply`` finds out, and the mail to the
    # address given tells its owner; the page says the same either way.

    def clean_username(self) -> str:
        return self.cleaned_data["username"]

    def clean_email(self) -> str:
        return self.cleaned_data["email"].lower()

    def validate_unique(self) -> None:
        pass


class LoginForm(AuthenticationForm):
    """``/login/``: a password, and for a manager (or an affiliate who turned it on) the one-time
    code from their authenticator (checked only once the password is right: see ``twofactor``)."""

    otp_token = forms.CharField(
        required=False,
        max_length=16,
        label="One-time code (if your account asks for one)",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        self.otp_device = None
        user = self.get_user()
        if user is not None and twofactor.login_needs_code(user):
            try:
                self.otp_device = twofactor.totp_device(user, cleaned.get("otp_token"))
            except forms.ValidationError:
                self.user_cache = None
                raise
        return cleaned


class LinkForm(forms.ModelForm):
    class Meta:
        model = TrackingLink
        fields = ("campaign", "name", "sub1", "sub2", "sub3", "sub4", "sub5", "deep_link")

    def __init__(self, *args, affiliate: Affiliate, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only what the affiliate may send traffic to: public, or approved for them (offers).
        self.fields["campaign"].queryset = offers.campaigns_usable(affiliate).order_by("name")


class EndpointForm(forms.ModelForm):
    class Meta:
        model = OutboundEndpoint
        fields = ("url_template", "method", "campaign", "event_types", "send_on_reversal")
        widgets = {"url_template": forms.TextInput(attrs={"size": 80})}

    def __init__(self, *args, affiliate: Affiliate, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.affiliate = affiliate  # the model's checks count the affiliate's URLs
        self.fields["campaign"].queryset = Campaign.objects.filter(
            pk__in=affiliate.links.values("campaign_id")
        )

    def clean_url_template(self) -> str:
        url = self.cleaned_data["url_template"].strip()
        if not url.lower().startswith(("http://", "https://")):
            raise forms.ValidationError("Only http:// and https:// URLs can be called.")
        return url


class AffiliatePasswordResetForm(PasswordResetForm):
    """Also reaches affiliates moved in from another platform, who have no password here yet."""

    def get_users(self, email: str):
        users = get_user_model()._default_manager.filter(email__iexact=email, is_active=True)
        return (u for u in users if u.has_usable_password() or hasattr(u, "affiliate"))


class SettingsForm(forms.Form):
    """The affiliate's time zone and currency: a change applies from their next day."""

    time_zone = forms.ChoiceField(choices=[(z, z) for z in ZONES])
    currency = forms.ChoiceField(choices=[(c, c) for c in CURRENCIES])


class ContactForm(forms.ModelForm):
    """The affiliate's own contact details (``/dashboard/profile/``)."""

    email = forms.EmailField()

    class Meta:
        model = Affiliate
        fields = (
            "website",
            "traffic_sources",
            "country",
            "messenger",
            "company",
            "vat_id",
            "address",
        )
        widgets = {
            "traffic_sources": forms.Textarea(attrs={"rows": 2}),
            "address": forms.Textarea(attrs={"rows": 2}),
        }

    def clean_country(self) -> str:
        country = (self.cleaned_data.get("country") or "").strip().upper()
        if country and not is_country_code(country):
            raise forms.ValidationError("Two letters: the ISO code of your country, e.g. DE.")
        return country

    def clean_vat_id(self) -> str:
        vat_id = (self.cleaned_data.get("vat_id") or "").replace(" ", "").upper()
        if vat_id and vat_id[:2] in EU_VAT_PREFIXES and not eu_vat.is_valid(vat_id):
            raise forms.ValidationError("Not a valid EU VAT id.")
        return vat_id


# Wallet addresses by network: the shape only (a typo is refused; ownership is the affiliate's).
WALLETS = {
    PaymentDetailsChange.Network.BITCOIN: re.compile(
        r"^(bc1[02-9ac-hj-np-z]{11,71}|[13][1-9A-HJ-NP-Za-km-z]{25,34})$"
    ),
    PaymentDetailsChange.Network.ETHEREUM: re.compile(r"^0x[0-9a-fA-F]{40}$"),
    PaymentDetailsChange.Network.TRON: re.compile(r"^T[1-9A-HJ-NP-Za-km-z]{33}$"),
}


class PasswordChecked:
    """A form with a ``password`` field that must be the signed-in ``user``'s: it proves the
    affiliate, not whoever found the open session, is typing."""

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


class TwoFactorForm(PasswordChecked, forms.Form):
    """Turning the one-time code on (a code from the new authenticator) or off (password and a
    code from the current one)."""

    otp_token = forms.CharField(
        max_length=16,
        label="One-time code from your authenticator app",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    password = forms.CharField(widget=forms.PasswordInput, label="Your password")


class PaymentDetailsForm(PasswordChecked, forms.Form):
    """New payment details; the password proves it is the affiliate typing them."""

    method = forms.ChoiceField(choices=PaymentDetailsChange.Method.choices)
    account_name = forms.CharField(required=False, max_length=200, label="Account holder")
    iban = forms.CharField(required=False, max_length=42, label="IBAN")
    bic = forms.CharField(required=False, max_length=14, label="SWIFT/BIC")
    paypal_email = forms.EmailField(required=False, label="PayPal email")
    wallet = forms.CharField(required=False, max_length=128)
    network = forms.ChoiceField(
        required=False, choices=[("", "—"), *PaymentDetailsChange.Network.choices]
    )
    password = forms.CharField(widget=forms.PasswordInput, label="Your password")

    def clean(self) -> dict:
        data = super().clean()
        method = data.get("method")
        if method == PaymentDetailsChange.Method.BANK:
            if not (data.get("account_name") or "").strip():
                self.add_error("account_name", "The name on the account.")
            try:
                data["iban"] = stdnum_iban.validate(data.get("iban") or "")
            except StdnumError:
                self.add_error("iban", "Not a valid IBAN.")
            try:
                data["bic"] = stdnum_bic.validate(data.get("bic") or "")
            except StdnumError:
                self.add_error("bic", "Not a valid SWIFT/BIC code.")
        elif method == PaymentDetailsChange.Method.PAYPAL:
            if not data.get("paypal_email"):
                self.add_error("paypal_email", "The email of your PayPal account.")
        elif method == PaymentDetailsChange.Method.CRYPTO:
            network, wallet = data.get("network"), (data.get("wallet") or "").strip()
            if not network:
                self.add_error("network", "Which network the wallet is on.")
            elif not WALLETS[network].match(wallet):
                self.add_error(
                    "wallet",
                    f"Not a {dict(PaymentDetailsChange.Network.choices)[network]} address.",
                )
            data["wallet"] = wallet
        return data
