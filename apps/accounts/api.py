"""The signed-in user's own viewer settings: GET and PUT /api/reading/preferences/."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import preferences
from apps.studies.api import ReaderSessionAuthentication


class ViewerPreferences(APIView):
    authentication_classes = [ReaderSessionAuthentication]  # 401 for an anonymous caller
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request) -> Response:
        return Response(preferences.get_preferences(request.user), headers={"Cache-Control": "private, no-store"})

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def put(self, request) -> Response:
        """Sets the settings given, for example {"mouse": {"left": "windowLevel", "middle": "zoom", "right": "pan"}}."""
        try:
            return Response(preferences.set_preferences(request.user, request.data))
        except preferences.InvalidPreferences as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
