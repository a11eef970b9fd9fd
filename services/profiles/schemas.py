"""HTTP schemas of the profiles service: the profile a member writes (every field bounded and
checked, a 422 naming the field otherwise) and the views others read."""
from __future__ import annotations

import re

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from services.profiles.profiles import VISIBILITIES
from services.profiles.recommendations import RELATIONSHIP_MAX, STATUSES, TEXT_MAX
from shared.events.catalogue import HEADLINE_MAX, NAME_MAX
from shared.http.fields import Text
from shared.pages import PageArgs, page_schema

ABOUT_MAX = 2600
DESCRIPTION_MAX = 2000
SHORT_MAX = 100  # location, industry, titles, organizations, degrees, fields
LONG_TITLE_MAX = 200  # schools, accomplishments and their issuers
SKILL_MAX = 80
EXPERIENCE_MAX, EDUCATION_MAX, SKILLS_MAX, ACCOMPLISHMENTS_MAX = 50, 20, 100, 100
ACCOMPLISHMENT_KINDS = ("certification", "publication", "award", "project", "language")
YEAR_MONTH = re.compile(r"^(1[89]|20)\d\d-(0[1-9]|1[0-2])$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().\-]{3,28}[0-9]$")


class Strict(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


def YearMonth(**kw):  # noqa: N802 - reads as a field type
    metadata = {"pattern": YEAR_MONTH.pattern, "example": "2024-03", **kw.pop("metadata", {})}
    return fields.String(validate=validate.Regexp(YEAR_MONTH, error="A month as YYYY-MM (1800-2099)."),
                         metadata=metadata, **kw)


def _check_period(data: dict) -> None:
    if data.get("start") and data.get("end") and data["end"] < data["start"]:
        raise ValidationError("Ends before it starts.", "end")


class ContactSchema(Strict):
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(validate=validate.Regexp(PHONE, error="A phone number: digits, spaces, ( ) . - and a "
                                                                "leading +, 5 to 30 characters."))
    website = fields.Url(schemes={"http", "https"}, require_tld=True, validate=validate.Length(max=500))


class PositionSchema(Strict):
    title = Text(max_length=SHORT_MAX, required=True)
    organization = Text(max_length=SHORT_MAX, required=True)
    start = YearMonth(required=True)
    end = YearMonth(load_default=None, allow_none=True, metadata={"description": "Absent or null: a current position."})
    description = Text(max_length=DESCRIPTION_MAX, allow_empty=True)

    @validates_schema
    def period(self, data, **kwargs):
        _check_period(data)


class PositionOutSchema(PositionSchema):
    current = fields.Boolean(required=True, metadata={"description": "No end: the member holds it now."})


class EducationSchema(Strict):
    school = Text(max_length=LONG_TITLE_MAX, required=True)
    degree = Text(max_length=SHORT_MAX, allow_empty=True)
    field = Text(max_length=SHORT_MAX, allow_empty=True)
    start = YearMonth(allow_none=True)
    end = YearMonth(allow_none=True)

    @validates_schema
    def period(self, data, **kwargs):
        _check_period(data)


class AccomplishmentSchema(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(ACCOMPLISHMENT_KINDS))
    title = Text(max_length=LONG_TITLE_MAX, required=True)
    issuer = Text(max_length=LONG_TITLE_MAX, allow_empty=True)
    date = YearMonth(allow_none=True)


def fold_skills(skills: list[str]) -> list[str]:
    """Skills with their spacing tidied, duplicates (case-insensitive) folded into the first."""
    seen, kept = set(), []
    for skill in skills:
        display = " ".join(skill.split())
        key = display.casefold()
        if key not in seen:
            seen.add(key)
            kept.append(display)
    return kept


class ProfileArgsSchema(Strict):
    """The profile a member writes: whole with PUT, any of its fields with PATCH."""
    name = Text(max_length=NAME_MAX, required=True)
    headline = Text(max_length=HEADLINE_MAX, allow_empty=True)
    location = Text(max_length=SHORT_MAX, allow_empty=True)
    industry = Text(max_length=SHORT_MAX, allow_empty=True)
    about = Text(max_length=ABOUT_MAX, allow_empty=True)
    contact = fields.Nested(ContactSchema)
    experience = fields.List(fields.Nested(PositionSchema), validate=validate.Length(max=EXPERIENCE_MAX))
    education = fields.List(fields.Nested(EducationSchema), validate=validate.Length(max=EDUCATION_MAX))
    skills = fields.List(Text(max_length=SKILL_MAX), validate=validate.Length(max=SKILLS_MAX),
                         metadata={"description": "Duplicates, without regard to case or spacing, are folded "
                                                  "into the first."})
    accomplishments = fields.List(fields.Nested(AccomplishmentSchema),
                                  validate=validate.Length(max=ACCOMPLISHMENTS_MAX))

    @post_load
    def folded(self, data, **kwargs):
        if "skills" in data:
            data["skills"] = fold_skills(data["skills"])
        if "experience" in data:
            data["experience"] = [{k: v for k, v in p.items() if v is not None} for p in data["experience"]]
        return data


class ProfilePatchSchema(ProfileArgsSchema):
    """PATCH: any of the profile's fields; the name, when given, follows the same rule."""
    name = Text(max_length=NAME_MAX)


class SkillSchema(Schema):
    name = fields.String(required=True)
    endorsements = fields.Integer(required=True, metadata={"description": "Endorsements by connections."})


class CurrentPositionSchema(Schema):
    title = fields.String(required=True)
    organization = fields.String(required=True)


class AcceptedRecommendationSchema(Schema):
    id = fields.String(required=True)
    author = fields.String(required=True)
    relationship = fields.String(required=True)
    text = fields.String(required=True)
    written_at = fields.String(required=True, metadata={"format": "date-time"})


class VisibilitySchema(Strict):
    profile_visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES), metadata={
        "description": "Who sees more than name and headline: everyone (limited view), or connections only."})


ACCESS = ("self", "full", "limited", "minimal")


class ProfileSchema(Schema):
    """A profile as the caller may see it: ``access`` names the view, and only its fields are present
    (minimal: name, headline; limited adds location, industry, about, current_positions,
    top_skills; full adds contact, experience, education, skills, accomplishments and accepted
    recommendations; self adds settings and times)."""
    member = fields.String(required=True)
    access = fields.String(required=True, validate=validate.OneOf(ACCESS))
    name = fields.String(required=True)
    headline = fields.String(required=True)
    location = fields.String()
    industry = fields.String()
    about = fields.String()
    current_positions = fields.List(fields.Nested(CurrentPositionSchema))
    top_skills = fields.List(fields.Nested(SkillSchema), metadata={"description": "Up to 3, most endorsed first."})
    contact = fields.Nested(ContactSchema)
    experience = fields.List(fields.Nested(PositionOutSchema))
    education = fields.List(fields.Nested(EducationSchema))
    skills = fields.List(fields.Nested(SkillSchema))
    accomplishments = fields.List(fields.Nested(AccomplishmentSchema))
    recommendations = fields.List(fields.Nested(AcceptedRecommendationSchema),
                                  metadata={"description": "Accepted ones, newest first (up to 50)."})
    settings = fields.Nested(VisibilitySchema)
    registered_at = fields.String(metadata={"format": "date-time"})
    updated_at = fields.String(metadata={"format": "date-time"})


class SearchArgs(Strict):
    q = fields.String(required=True, validate=validate.Length(min=1, max=200),
                      metadata={"description": "Words, each a prefix of a word of the name (any case, any accents)."})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=20))
    cursor = fields.String(load_default=None, validate=validate.Length(max=1024))


class FoundMemberSchema(Schema):
    member = fields.String(required=True)
    name = fields.String(required=True)
    headline = fields.String(required=True)
    connection = fields.Boolean(required=True, metadata={"description": "A 1st-degree connection of the caller."})


FoundMemberPageSchema = page_schema(FoundMemberSchema)


class RecommendationArgs(Strict):
    relationship = Text(max_length=RELATIONSHIP_MAX, required=True,
                        metadata={"description": "How the author knows the recipient, e.g. 'managed Ada directly'."})
    text = Text(max_length=TEXT_MAX, required=True)


class RecommendationSchema(Schema):
    id = fields.String(required=True)
    author = fields.String(required=True)
    recipient = fields.String(required=True)
    relationship = fields.String(required=True)
    text = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    written_at = fields.String(required=True, metadata={"format": "date-time"})
    decided_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


RecommendationPageSchema = page_schema(RecommendationSchema)


class RecommendationListArgs(PageArgs):
    class Meta:
        unknown = RAISE

    direction = fields.String(load_default="received", validate=validate.OneOf(["received", "given"]))
