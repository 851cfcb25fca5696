"""The settings page's teams, products and people: their forms (each error beside its field) and what each row
offers the viewer (rename, re-role, remove, revoke), as observatory.access allows it."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils.text import slugify

from observatory.access import Viewer, visible_invitations, visible_memberships, visible_products
from observatory.dashboard.tenancy import new_form_token, teams_with_counts
from observatory.dashboard.widgets import QuickSelect, QuickTextInput
from observatory.models import Invitation, Membership, Organization, Product, Role, Team
from observatory.services import INVITATION_DAYS

ORGANIZATION_WIDE = ""  # the "where" of an organization-wide role or a product without a team


def _slug_field() -> forms.CharField:
    return forms.CharField(max_length=100, required=False, label="Slug",
                           help_text="What calls send; empty: from the name.")


class _NamedForm(forms.Form):
    """A team's or product's name (and, when created, its slug): both unique in the organization."""

    model: type[Team] | type[Product]
    noun = ""
    name = forms.CharField(max_length=200, label="Name", widget=QuickTextInput)

    def __init__(self, organization: Organization, *args, instance=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.organization, self.instance = organization, instance
        if instance is not None:
            self.initial.setdefault("name", instance.name)

    def _others(self):
        others = self.model.objects.filter(organization=self.organization)
        return others.exclude(pk=self.instance.pk) if self.instance is not None else others

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if self._others().filter(name__iexact=name).exists():
            raise forms.ValidationError(f"A {self.noun} named “{name}” already exists.")
        return name

    def clean_slug(self) -> str:
        slug = slugify(self.cleaned_data.get("slug") or self.data.get(self.add_prefix("name"), ""))[:100]
        if not slug:
            raise forms.ValidationError("Give a slug of letters, digits or dashes.")
        if self._others().filter(slug=slug).exists():
            raise forms.ValidationError(f"The slug “{slug}” is taken by another {self.noun}.")
        return slug


class TeamForm(_NamedForm):
    model, noun = Team, "team"


class NewTeamForm(TeamForm):
    slug = _slug_field()


def _team_choices(viewer: Viewer, none_label: str) -> list[tuple[str, str]]:
    teams = [(str(team.id), team.name) for team in viewer.administered_teams]
    return ([(ORGANIZATION_WIDE, none_label)] if viewer.is_admin else []) + teams


class ProductForm(_NamedForm):
    """A product's name and owning team: one the viewer administers (no team: organization admins only)."""

    model, noun = Product, "product"
    team = forms.ChoiceField(label="Owning team", required=False, widget=QuickSelect)

    def __init__(self, viewer: Viewer, *args, instance=None, **kwargs) -> None:
        super().__init__(viewer.organization, *args, instance=instance, **kwargs)
        self.viewer = viewer
        self.fields["team"].choices = _team_choices(viewer, "No team")
        if instance is not None:
            self.initial.setdefault("team", str(instance.team_id or ""))

    def clean_team(self) -> Team | None:
        chosen = self.cleaned_data["team"]
        if chosen == ORGANIZATION_WIDE:
            if not self.viewer.is_admin:
                raise forms.ValidationError("Pick one of your teams.")
            return None
        return next(team for team in self.viewer.administered_teams if str(team.id) == chosen)


class NewProductForm(ProductForm):
    slug = _slug_field()
    field_order = ["name", "slug", "team"]


class InviteForm(forms.Form):
    """Who to invite, where (the whole organization: organization admins only) and with which role."""

    email = forms.EmailField(label="Email")
    where = forms.ChoiceField(label="Team", required=False)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.VIEWER)
    once = forms.CharField(required=False, widget=forms.HiddenInput)  # the form's one-time token

    def __init__(self, viewer: Viewer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["once"] = new_form_token()
        self.viewer = viewer
        self.fields["where"].choices = _team_choices(viewer, "All teams (organization-wide)")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        pending = Invitation.objects.filter(organization=self.viewer.organization, email__iexact=email)
        if any(invitation.is_pending for invitation in pending):
            raise forms.ValidationError(f"{email} already has a pending invitation: revoke it to send a new one.")
        return email

    def clean_where(self) -> Team | None:
        chosen = self.cleaned_data["where"]
        if chosen == ORGANIZATION_WIDE:
            if not self.viewer.is_admin:
                raise forms.ValidationError("Pick one of your teams: only organization admins grant organization-wide "
                                            "roles.")
            return None
        return next(team for team in self.viewer.administered_teams if str(team.id) == chosen)

    def clean(self) -> dict:
        data = super().clean()
        if "email" in data and "where" in data:
            account = existing_account(data["email"])
            if account is not None and Membership.objects.filter(
                    user=account, organization=self.viewer.organization, team=data["where"]).exists():
                self.add_error("email", f"{data['email']} is already a member there: change their role below.")
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices, widget=QuickSelect)


def existing_account(email: str):
    """The account an invitation to `email` joins instead of creating one (its email, or its username, is it)."""
    return get_user_model().objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("pk").first()


def people_context(viewer: Viewer, bound: dict[str, forms.Form] | None = None, edit: str = "") -> dict:
    """Rows and forms of the teams, products and people cards; `bound` holds a form just posted with errors, by its
    prefix (e.g. "team12", "new-team"), shown in its place. A team's or product's edit form is built only for the row
    asked for (`edit`, the form's prefix, from the row's Edit link): an organization with fifty teams and a hundred
    products would otherwise render a hundred and fifty forms nobody opened."""
    bound = bound or {}

    def form(prefix: str, make):
        return bound[prefix] if prefix in bound else make(prefix)

    def row_form(prefix: str, make):
        return bound.get(prefix) or (make(prefix) if prefix == edit else None)

    teams = [{"team": team, "editable": viewer.may_manage_team(team.id), "prefix": f"team{team.id}",
              "form": row_form(f"team{team.id}", lambda p, t=team: TeamForm(viewer.organization, instance=t, prefix=p))
              if viewer.may_manage_team(team.id) else None}
             for team in teams_with_counts(viewer)]
    products = [{"product": product, "editable": viewer.may_manage_team(product.team_id), "prefix": f"product{product.id}",
                 "form": row_form(f"product{product.id}", lambda p, pr=product: ProductForm(viewer, instance=pr, prefix=p))
                 if viewer.may_manage_team(product.team_id) else None}
                for product in visible_products(viewer)]
    members = [{"membership": m, "form": form(f"member{m.id}", lambda p, m=m: RoleForm(
                    initial={"role": m.role}, prefix=p)) if viewer.may_manage_team(m.team_id) else None}
               for m in visible_memberships(viewer).order_by(
                   F("team__name").asc(nulls_first=True), "user__username")]
    invitations = [{"invitation": i, "can_revoke": viewer.may_manage_team(i.team_id)}
                   for i in visible_invitations(viewer).order_by("email")]
    return {
        "invitation_days": INVITATION_DAYS,
        "team_rows": teams, "product_rows": products, "member_rows": members, "invitation_rows": invitations,
        "new_team_form": form("new-team", lambda p: NewTeamForm(viewer.organization, prefix=p)) if viewer.is_admin else None,
        "new_product_form": form("new-product", lambda p: NewProductForm(viewer, prefix=p))
        if viewer.may_manage_people else None,
        "invite_form": form("invite", lambda p: InviteForm(viewer, prefix=p)) if viewer.may_manage_people else None,
    }
