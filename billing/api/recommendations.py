"""REST API for savings recommendations: list, read, accept / dismiss / reopen, recompute."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from billing import services
from billing.api.permissions import ApiKeysReadOnly, key_of
from billing.models import Recommendation
from observatory.access import api_viewer, readable, viewer_in


class RecommendationSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    days_with_data = serializers.SerializerMethodField(
        help_text="The days monthly_savings_usd is scaled by: evidence_value × 30.44 / this (data_start to data_end).")

    class Meta:

        model = Recommendation
        fields = ["id", "organization", "kind", "team", "product", "feature", "model", "title", "evidence", "formula",
                  "monthly_savings_usd", "confidence", "status", "dismissed_reason", "evidence_value",
                  "days_with_data", "data_start", "data_end", "created_at", "updated_at"]
        read_only_fields = fields


    def get_days_with_data(self, rec: Recommendation) -> str | None:
        span = rec.data_span
        return None if span is None else f"{span.days.quantize(Decimal('0.0001'))}"


class RecommendationStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "accepted", "dismissed"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class RecommendationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Savings recommendations the requester may read (as for budgets: org-wide members all of their organization,
    team members those scoped to their teams), biggest saving first; ?status= and ?kind= filter.
    Admins, and managers of the recommendation's team, change its status."""

    serializer_class = RecommendationSerializer
    permission_classes = [permissions.IsAuthenticated, ApiKeysReadOnly]
    lookup_value_converter = "int"

    def get_queryset(self):
        queryset = Recommendation.objects.select_related("organization", "team", "product").order_by(
            "-monthly_savings_usd", "id")
        for name in ("status", "kind"):
            value = self.request.query_params.get(name)
            if value:
                queryset = queryset.filter(**{name: value})
        return readable(queryset, self.request.user, key_of(self.request))

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="refresh")
    def refresh(self, request):
        """Recompute the organization's recommendations now (in the background); admins and managers."""
        viewer = api_viewer(request)
        try:
            services.refresh_recommendations(viewer)
        except services.BrokerUnavailable:
            return Response({"detail": "the task broker is unavailable; try again later."}, status=503,
                            headers={"Retry-After": "30"})
        return Response({"detail": "queued", "organization": viewer.organization.slug}, status=202)

    @extend_schema(request=RecommendationStatusSerializer, responses=RecommendationSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        """Accept, dismiss (with an optional reason) or reopen a recommendation."""
        recommendation = self.get_object()
        viewer = viewer_in(request.user, recommendation.organization, key_of(request))
        if viewer is None or not viewer.may_change(recommendation.team, recommendation.product):
            raise PermissionDenied("only organization admins, and managers of its team, may change this.")
        data = RecommendationStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.set_recommendation_status(viewer, recommendation, data.validated_data["status"],
                                           data.validated_data["reason"])
        return Response(RecommendationSerializer(recommendation).data)
