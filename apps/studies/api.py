"""Reading API (readers, by opaque task token) and study administration API (admins).

Thin doors: parse the request, call a service, shape the answer. Reader endpoints answer 404 for any token
that is not the caller's.
"""

import csv
import io

from django.core.exceptions import ValidationError as ModelValidationError
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import IsAdmin
from apps.accounts.models import User
from apps.imaging.models import Case
from apps.studies.models import ReaderStudy, StudyStatus
from apps.studies.serializers import SESSION_FIELDS, SOURCE_FIELDS, ItemSerializer, ReaderStudySerializer
from apps.studies.services import definition, images, progress, reading

NO_STORE = "private, no-store"
JSON_SCHEMA = extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)


class ReaderSessionAuthentication(SessionAuthentication):
    """Session cookies only; an anonymous caller gets 401 rather than 403."""

    def authenticate_header(self, request) -> str:
        return 'Session realm="reading"'


class ReaderTaskView(APIView):
    authentication_classes = [ReaderSessionAuthentication]
    permission_classes = [IsAuthenticated]

    def task(self, request, task_token: str):
        try:
            return reading.get_task(request.user, task_token)
        except reading.NotFound as exc:
            raise Http404 from exc

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = NO_STORE
        return response

    def handle_exception(self, exc):
        if isinstance(exc, reading.NotFound):
            exc = Http404()
        if isinstance(exc, reading.Locked):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, reading.SessionLocked):
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        if isinstance(exc, reading.InvalidScores):
            body = {"detail": str(exc)}
            if exc.missing:
                body["missing"] = exc.missing
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class TaskDetail(ReaderTaskView):
    @JSON_SCHEMA
    def get(self, request, task_token: str) -> Response:
        """The task as the viewer needs it. Opens nothing: the page prefetches the next task with it."""
        task = self.task(request, task_token)
        images.prepare_windows(task)
        return Response(reading.task_payload(task))


class TaskOpen(ReaderTaskView):
    @JSON_SCHEMA
    def post(self, request, task_token: str) -> Response:
        """The page shows the task now: the first call records when it was opened."""
        task = self.task(request, task_token)
        reading.mark_opened(task)
        return Response({"status": task.status})


class TaskRevise(ReaderTaskView):
    @JSON_SCHEMA
    def post(self, request, task_token: str) -> Response:
        """Revise: opens a submitted task of a finished study for changes where the study allows it, recorded with
        who and when; 409 with the reason where it does not (the review stays read-only)."""
        task = reading.revise(request.user, self.task(request, task_token))
        return Response(reading.task_payload(task))


class TaskScores(ReaderTaskView):
    @JSON_SCHEMA
    def put(self, request, task_token: str) -> Response:
        """Autosave: partial scores of one panel."""
        task = self.task(request, task_token)
        scores = reading.autosave(request.user, task, request.data.get("panel"), request.data.get("scores"))
        return Response({"scores": scores})


class TaskSubmit(ReaderTaskView):
    @JSON_SCHEMA
    def post(self, request, task_token: str) -> Response:
        task = self.task(request, task_token)
        reading.submit(request.user, task, request.data.get("scores"), request.data.get("seconds_on_task", 0))
        following = reading.next_task(task)
        body = {"next_url": reading.task_url(following), "submitted": True}
        if following is None:
            body["waiting"] = reading.next_session_note(task)
        return Response(body)


class CalibrationScores(ReaderTaskView):
    @JSON_SCHEMA
    def get(self, request, task_token: str) -> Response:
        task = self.task(request, task_token)
        return Response(reading.calibration_scores(request.user, task))


class StudyViewSet(viewsets.ModelViewSet):
    """Study definition for admins: create, items, readers, cases, assignment, open, lock, progress, export."""

    queryset = ReaderStudy.objects.all()
    serializer_class = ReaderStudySerializer
    permission_classes = [IsAdmin]
    json_body = dict  # the top level of a JSON body (readerstudy.parsers); the items action takes a list

    def perform_create(self, serializer):
        serializer.instance = definition.create_study(**serializer.validated_data)  # full_clean: a complete source

    def handle_exception(self, exc):
        if isinstance(exc, definition.PairsNotReady):
            body = {"detail": str(exc), "pending": [pair.as_dict() for pair in exc.pending]}
            return Response(body, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, definition.StudyStateError):
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, ValueError | ModelValidationError):
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def update(self, request, *args, **kwargs):
        study = self.get_object()
        if isinstance(request.data, dict) and SOURCE_FIELDS & set(request.data):
            definition.require_source_changeable(study)
        if isinstance(request.data, dict) and SESSION_FIELDS & set(request.data):
            definition.require_sessions_changeable(study)
        if study.status != StudyStatus.DRAFT:
            raise definition.StudyStateError("Only a draft study can be changed.")
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        """The DL source goes through its service (refused once reading has begun); the rest is saved as sent."""
        study, data = serializer.instance, serializer.validated_data
        if SOURCE_FIELDS & set(data):
            definition.set_source(
                study, data.get("dl_source", study.dl_source), data.get("dl_model", study.dl_model),
                data.get("dl_factor", study.dl_factor),
            )
        serializer.save(**{name: getattr(study, name) for name in SOURCE_FIELDS})

    @action(detail=True, methods=["put"], json_body=list)
    def items(self, request, pk=None) -> Response:
        items = ItemSerializer(data=request.data, many=True)
        items.is_valid(raise_exception=True)
        created = definition.set_items(self.get_object(), items.validated_data)
        return Response(ItemSerializer(created, many=True).data)

    @action(detail=True, methods=["put"])
    def readers(self, request, pk=None) -> Response:
        ids = _ids(request.data.get("readers"), "readers")
        definition.set_readers(self.get_object(), User.objects.filter(pk__in=ids))
        return Response(ReaderStudySerializer(self.get_object()).data)

    @action(detail=True, methods=["put"])
    def cases(self, request, pk=None) -> Response:
        cases = Case.objects.filter(pk__in=_ids(request.data.get("cases"), "cases"))
        calibration = Case.objects.filter(pk__in=_ids(request.data.get("calibration_cases", []), "calibration"))
        definition.set_cases(self.get_object(), cases, calibration)
        return Response(ReaderStudySerializer(self.get_object()).data)

    @action(detail=True, methods=["post"])
    def append(self, request, pk=None) -> Response:
        cases = Case.objects.filter(pk__in=_ids(request.data.get("cases"), "cases"))
        return Response({"tasks_added": definition.append_cases(self.get_object(), cases)})

    @action(detail=True, methods=["post"])
    def generate(self, request, pk=None) -> Response:
        return Response({"tasks": definition.generate(self.get_object())})

    @action(detail=True, methods=["post"], url_path="open")
    def open_reading(self, request, pk=None) -> Response:
        definition.open_for_reading(self.get_object())
        return Response(ReaderStudySerializer(self.get_object()).data)

    @action(detail=True, methods=["post"])
    def lock(self, request, pk=None) -> Response:
        definition.lock(self.get_object())
        return Response(ReaderStudySerializer(self.get_object()).data)

    @action(detail=True, methods=["get"], url_path="progress")
    def study_progress(self, request, pk=None) -> Response:
        result = progress.study_progress(self.get_object())
        return Response({key: [p.as_dict() for p in rows] for key, rows in result.items()})

    @action(detail=True, methods=["get"])
    def assignment(self, request, pk=None) -> Response:
        """The stored assignment, unblinded, one row per task."""
        return Response(definition.assignment_rows(self.get_object()))

    @action(detail=True, methods=["get"], url_path="assignment.csv")
    def assignment_csv(self, request, pk=None) -> HttpResponse:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=definition.ASSIGNMENT_COLUMNS)
        writer.writeheader()
        writer.writerows(definition.assignment_rows(self.get_object()))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="assignment-study-{pk}.csv"'
        return response

def _ids(value: object, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValidationError({name: "Give a list of ids."})
    return value
