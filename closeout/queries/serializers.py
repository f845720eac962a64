from __future__ import annotations

from typing import Any

from rest_framework import serializers

from closeout.datalock.services import lock_signature_check, lock_signature_valid
from closeout.models import QueryStatus
from closeout.queries.checks import CHECK_LABELS


class QueryOutput(serializers.Serializer):
    """A query; ``hidden`` ones (about a record that would tell a blinded reader the arm) carry no
    record, field, text, check or answer."""

    id = serializers.IntegerField()
    status = serializers.CharField()
    site = serializers.CharField(source="site.code")
    hidden = serializers.SerializerMethodField()
    record_type = serializers.SerializerMethodField()
    record_id = serializers.SerializerMethodField()
    participant = serializers.SerializerMethodField()
    field = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField()
    answer = serializers.SerializerMethodField()
    check_code = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    raised_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def _hidden(self, obj: Any) -> bool:
        return bool(self.context.get("hide_arm")) and obj.record_type in self.context.get("arm_revealing", ())

    def get_hidden(self, obj: Any) -> bool:
        return self._hidden(obj)

    def get_record_type(self, obj: Any) -> str | None:
        return None if self._hidden(obj) else obj.record_type

    def get_record_id(self, obj: Any) -> int | None:
        return None if self._hidden(obj) else obj.record_id

    def get_participant(self, obj: Any) -> str | None:
        if self._hidden(obj):
            return None
        ref = self.context.get("refs", {}).get((obj.record_type, obj.record_id))
        return ref.study_id if ref and ref.study_id else None

    def get_field(self, obj: Any) -> str | None:
        return None if self._hidden(obj) else obj.field

    def get_text(self, obj: Any) -> str | None:
        return None if self._hidden(obj) else obj.text

    def get_answer(self, obj: Any) -> str | None:
        return None if self._hidden(obj) else obj.answer

    def get_check_code(self, obj: Any) -> str | None:
        return None if self._hidden(obj) else obj.check_code

    def get_assignee(self, obj: Any) -> str | None:
        return obj.assignee.get_username() if obj.assignee_id else None

    def get_raised_by(self, obj: Any) -> str | None:
        return obj.raised_by.get_username() if obj.raised_by_id else None


class QueryFilterQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=QueryStatus.choices, required=False)
    site = serializers.CharField(required=False, max_length=20)
    assignee = serializers.CharField(required=False, max_length=150)
    record = serializers.RegexField(r"^[a-z_]+\.[a-z_]+:[0-9]{1,18}$", required=False, help_text="app.model:id")
    check = serializers.ChoiceField(choices=list(CHECK_LABELS), required=False)
    mine = serializers.BooleanField(required=False, default=False)


class QueryCreateInput(serializers.Serializer):
    record = serializers.RegexField(
        r"^[a-z_]+\.[a-z_]+:[0-9]{1,18}$", help_text="app.model:id, e.g. followup.questionnaireresponse:12"
    )
    field = serializers.CharField(required=False, allow_blank=True, max_length=80, default="")
    text = serializers.CharField(max_length=5000)
    assignee = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="A username at the record's site."
    )


class AnswerInput(serializers.Serializer):
    answer = serializers.CharField(max_length=5000)


class CloseInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class ReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class BlockersOutput(serializers.Serializer):
    any = serializers.BooleanField()
    open_queries = serializers.IntegerField()
    pending_adverse_events = serializers.IntegerField()
    open_questionnaires = serializers.IntegerField()
    items = serializers.ListField(child=serializers.CharField(), source="describe")


class LockOutput(serializers.Serializer):
    locked = serializers.SerializerMethodField()
    version = serializers.IntegerField()
    signer_name = serializers.CharField()
    locked_at = serializers.DateTimeField()
    meaning = serializers.CharField()
    signature_valid = serializers.SerializerMethodField()
    signature_problem = serializers.SerializerMethodField()
    open_items_note = serializers.CharField()
    unlocked_at = serializers.DateTimeField(allow_null=True)
    unlock_signer_name = serializers.CharField()
    unlock_reason = serializers.CharField()

    def get_locked(self, obj: Any) -> bool:
        return obj.unlocked_at is None

    def get_signature_valid(self, obj: Any) -> bool:
        return lock_signature_valid(lock=obj)

    def get_signature_problem(self, obj: Any) -> str:
        """Why the signature is not valid ("" when it is)."""
        return lock_signature_check(lock=obj).problem


class LockInput(serializers.Serializer):
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    meaning = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    open_items_note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class UnlockInput(serializers.Serializer):
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    reason = serializers.CharField(max_length=500)


class LockStateOutput(serializers.Serializer):
    """What the lock endpoints answer (documentation only): whether the database is locked and what
    stands in the way of a lock; with the lock's fields when there has been one."""

    locked = serializers.BooleanField()
    blockers = BlockersOutput()
    version = serializers.IntegerField(required=False)
    signer_name = serializers.CharField(required=False)
    locked_at = serializers.DateTimeField(required=False)
    meaning = serializers.CharField(required=False)
    signature_valid = serializers.BooleanField(required=False)
    signature_problem = serializers.CharField(required=False)
    open_items_note = serializers.CharField(required=False)
    unlocked_at = serializers.DateTimeField(allow_null=True, required=False)
    unlock_signer_name = serializers.CharField(required=False)
    unlock_reason = serializers.CharField(required=False)
