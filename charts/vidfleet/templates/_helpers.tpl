{{/* Names */}}

{{- define "vidfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vidfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>"; call with (dict "root" $ "component" "detector"). */}}
{{- define "vidfleet.componentName" -}}
{{- printf "%s-%s" (include "vidfleet.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vidfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vidfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vidfleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels; call with (dict "root" $ "component" "detector"). */}}
{{- define "vidfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vidfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "vidfleet.labels" -}}
helm.sh/chart: {{ include "vidfleet.chart" .root }}
{{ include "vidfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vidfleet
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* Image reference; call with (dict "root" $ "image" .Values.x.image). */}}
{{- define "vidfleet.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{- define "vidfleet.liveDetectorImage" -}}
{{- $repo := default .Values.detector.image.repository .Values.liveDetector.image.repository -}}
{{- $tag := .Values.liveDetector.image.tag | default .Values.detector.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Redis connection */}}

{{- define "vidfleet.redis.external" -}}
{{- urlParse .Values.redis.external.url | toJson -}}
{{- end -}}

{{- define "vidfleet.redis.scheme" -}}
{{- if .Values.redis.enabled -}}redis{{- else -}}{{ (include "vidfleet.redis.external" . | fromJson).scheme }}{{- end -}}
{{- end -}}

{{- define "vidfleet.redis.tls" -}}
{{- if eq (include "vidfleet.redis.scheme" .) "rediss" -}}true{{- end -}}
{{- end -}}

{{/* host:port as the pods see it. */}}
{{- define "vidfleet.redis.hostPort" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s:6379" (include "vidfleet.componentName" (dict "root" . "component" "redis")) -}}
{{- else -}}
{{- $host := (include "vidfleet.redis.external" . | fromJson).host -}}
{{- if regexMatch ":[0-9]+$" $host -}}{{ $host }}{{- else -}}{{ printf "%s:6379" $host }}{{- end -}}
{{- end -}}
{{- end -}}

{{/* host:port as KEDA's operator (another namespace) sees it. */}}
{{- define "vidfleet.redis.kedaAddress" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s.%s.svc:6379" (include "vidfleet.componentName" (dict "root" . "component" "redis")) .Release.Namespace -}}
{{- else -}}
{{- include "vidfleet.redis.hostPort" . -}}
{{- end -}}
{{- end -}}

{{- define "vidfleet.redis.db" -}}
{{- if .Values.redis.enabled -}}0{{- else -}}{{ default "0" (trimPrefix "/" (include "vidfleet.redis.external" . | fromJson).path) }}{{- end -}}
{{- end -}}

{{- define "vidfleet.redis.secretName" -}}
{{- if .Values.redis.enabled -}}
{{- default (include "vidfleet.componentName" (dict "root" . "component" "redis")) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- .Values.redis.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "vidfleet.redis.passwordKey" -}}
{{- if .Values.redis.enabled -}}{{ .Values.redis.auth.existingSecretPasswordKey }}{{- else -}}{{ .Values.redis.external.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{- define "vidfleet.redis.hasPassword" -}}
{{- if include "vidfleet.redis.secretName" . -}}true{{- end -}}
{{- end -}}

{{/* The broker URL with $(REDIS_PASSWORD): the kubelet expands it from the REDIS_PASSWORD env var, so the
password never appears in the pod spec. */}}
{{- define "vidfleet.redis.url" -}}
{{- $auth := "" -}}
{{- if include "vidfleet.redis.hasPassword" . -}}
{{- $user := "" -}}
{{- if not .Values.redis.enabled -}}{{- $user = .Values.redis.external.username -}}{{- end -}}
{{- $auth = printf "%s:$(REDIS_PASSWORD)@" $user -}}
{{- else if and (not .Values.redis.enabled) .Values.redis.external.username -}}
{{- $auth = printf "%s@" .Values.redis.external.username -}}
{{- end -}}
{{- printf "%s://%s%s/%s" (include "vidfleet.redis.scheme" .) $auth (include "vidfleet.redis.hostPort" .) (include "vidfleet.redis.db" .) -}}
{{- end -}}

{{- define "vidfleet.redis.caMountPath" -}}/etc/vidfleet/redis-ca{{- end -}}

{{- define "vidfleet.redis.caFile" -}}
{{- if and (include "vidfleet.redis.tls" .) .Values.redis.external.caSecret.name -}}
{{- printf "%s/%s" (include "vidfleet.redis.caMountPath" .) .Values.redis.external.caSecret.key -}}
{{- end -}}
{{- end -}}

{{/* A secret value that survives upgrades: the existing Secret's value if there is one, else a random one.
Call with (dict "root" $ "name" "secret-name" "key" "key" "length" 32); returns it base64-encoded. */}}
{{- define "vidfleet.persistentSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by every vidfleet container: the broker and the settings. REDIS_PASSWORD comes first
because later entries refer to it (the kubelet expands only variables defined earlier). */}}
{{- define "vidfleet.env" -}}
{{- if include "vidfleet.redis.hasPassword" . }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "vidfleet.redis.secretName" . }}
      key: {{ include "vidfleet.redis.passwordKey" . }}
{{- end }}
- name: CELERY_BROKER_URL
  value: {{ include "vidfleet.redis.url" . | quote }}
{{- /* Never CELERY_RESULT_BACKEND: Celery reads it from the environment over the apps' result_backend=None and
would start a result backend that vidfleet does not use (results travel through the job records). */}}
{{- with include "vidfleet.redis.caFile" . }}
- name: VIDFLEET_REDIS_CA_FILE
  value: {{ . | quote }}
{{- end }}
- name: VIDFLEET_KEY_PREFIX
  value: {{ .Values.config.keyPrefix | quote }}
- name: VIDFLEET_INPUT_ROOTS
  value: {{ ternary .Values.storage.inputs.mountPath "" (not (empty .Values.storage.inputs.existingClaim)) | quote }}
- name: VIDFLEET_OUTPUT_ROOT
  value: {{ default .Values.storage.outputs.mountPath .Values.storage.s3.outputRoot | quote }}
{{- with .Values.storage.s3 }}
{{- if .inputBuckets }}
- name: VIDFLEET_INPUT_BUCKETS
  value: {{ join "," .inputBuckets | quote }}
{{- end }}
{{- if .endpointUrl }}
- name: VIDFLEET_S3_ENDPOINT_URL
  value: {{ .endpointUrl | quote }}
{{- end }}
{{- if .region }}
- name: VIDFLEET_S3_REGION
  value: {{ .region | quote }}
{{- end }}
{{- if ne .addressingStyle "auto" }}
- name: VIDFLEET_S3_ADDRESSING_STYLE
  value: {{ .addressingStyle | quote }}
{{- end }}
{{- end }}
- name: VIDFLEET_ALLOWED_URL_SCHEMES
  value: {{ join "," .Values.config.allowedUrlSchemes | quote }}
- name: VIDFLEET_STREAM_URL_SCHEMES
  value: {{ join "," .Values.config.streamUrlSchemes | quote }}
- name: VIDFLEET_WORKER_LOST_SECONDS
  value: {{ .Values.config.workerLostSeconds | toString | quote }}
- name: VIDFLEET_VISIBILITY_TIMEOUT
  value: {{ .Values.config.visibilityTimeout | int64 | toString | quote }}
{{- end -}}

{{/* Static S3 keys, for the containers that read or write buckets (the coordinator and the detectors); none
when the pods' identity comes from the ServiceAccount (IRSA, workload identity) or the node. */}}
{{- define "vidfleet.s3.secretName" -}}
{{- default (printf "%s-s3" (include "vidfleet.fullname" .)) .Values.storage.s3.credentials.existingSecret -}}
{{- end -}}

{{- define "vidfleet.s3.hasKeys" -}}
{{- if or .Values.storage.s3.credentials.existingSecret .Values.storage.s3.credentials.accessKeyId }}true{{ end -}}
{{- end -}}

{{- define "vidfleet.s3Env" -}}
{{- if include "vidfleet.s3.hasKeys" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "vidfleet.s3.secretName" . }}
      key: {{ .Values.storage.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "vidfleet.s3.secretName" . }}
      key: {{ .Values.storage.s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- end -}}

{{/* Security */}}

{{- define "vidfleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "vidfleet.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ default 10001 .uid }}
runAsGroup: {{ default 10001 .gid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Volumes every vidfleet pod has: a writable /tmp (the root filesystem is read-only) and the Redis CA. */}}
{{- define "vidfleet.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit | default "1Gi" }}
{{- if include "vidfleet.redis.caFile" . }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.external.caSecret.name }}
{{- end }}
{{- end -}}

{{- define "vidfleet.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "vidfleet.redis.caFile" . }}
- name: redis-ca
  mountPath: {{ include "vidfleet.redis.caMountPath" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Call with (dict "root" $ "outputs" true); the mounts below take the same arguments. */}}
{{- define "vidfleet.storageVolumes" -}}
{{- if .root.Values.storage.inputs.existingClaim }}
- name: inputs
  persistentVolumeClaim:
    claimName: {{ .root.Values.storage.inputs.existingClaim }}
    readOnly: true
{{- end }}
{{- if and .outputs (not .root.Values.storage.s3.outputRoot) }}
- name: outputs
  persistentVolumeClaim:
    claimName: {{ default (include "vidfleet.componentName" (dict "root" .root "component" "outputs")) .root.Values.storage.outputs.existingClaim }}
{{- end }}
{{- end -}}

{{- define "vidfleet.storageVolumeMounts" -}}
{{- if .root.Values.storage.inputs.existingClaim }}
- name: inputs
  mountPath: {{ .root.Values.storage.inputs.mountPath }}
  readOnly: true
  {{- with .root.Values.storage.inputs.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- if and .outputs (not .root.Values.storage.s3.outputRoot) }}
- name: outputs
  mountPath: {{ .root.Values.storage.outputs.mountPath }}
  {{- with .root.Values.storage.outputs.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "vidfleet.modelsVolume" -}}
- name: models
{{- if .Values.models.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.models.existingClaim }}
    readOnly: {{ .Values.models.readOnly }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.models.sizeLimit }}
{{- end }}
{{- end -}}

{{- define "vidfleet.modelsVolumeMount" -}}
- name: models
  mountPath: /models
  readOnly: {{ and .Values.models.readOnly (not (empty .Values.models.existingClaim)) }}
  {{- with .Values.models.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end -}}

{{/* GPU scheduling for a detector: resources with the GPU limit, node selector and tolerations merged.
Call with (dict "root" $ "component" .Values.detector). */}}
{{- define "vidfleet.detectorResources" -}}
{{- $resources := deepCopy (default dict .component.resources) -}}
{{- if .root.Values.gpu.enabled -}}
{{- $limits := deepCopy (default dict $resources.limits) -}}
{{- $_ := set $limits .root.Values.gpu.resourceName (int .root.Values.gpu.count) -}}
{{- $_ := set $resources "limits" $limits -}}
{{- end -}}
{{- toYaml $resources -}}
{{- end -}}

{{- define "vidfleet.detectorScheduling" -}}
{{- $nodeSelector := deepCopy (default dict .component.nodeSelector) -}}
{{- $tolerations := default list .component.tolerations -}}
{{- if .root.Values.gpu.enabled -}}
{{- $nodeSelector = merge $nodeSelector (default dict .root.Values.gpu.nodeSelector) -}}
{{- $tolerations = concat $tolerations (default list .root.Values.gpu.tolerations) -}}
{{- if .root.Values.gpu.runtimeClassName }}
runtimeClassName: {{ .root.Values.gpu.runtimeClassName }}
{{- end }}
{{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "vidfleet.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Probes of a Celery worker: its /metrics server runs in the worker's main process. */}}
{{- define "vidfleet.workerProbes" -}}
startupProbe:
  httpGet:
    path: /metrics
    port: metrics
  periodSeconds: 5
  failureThreshold: {{ default 60 .startupFailures }}
livenessProbe:
  httpGet:
    path: /metrics
    port: metrics
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /metrics
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* PodMonitor of a worker component; call with (dict "root" $ "component" "capture"). */}}
{{- define "vidfleet.podMonitor" -}}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ include "vidfleet.componentName" . }}
  labels:
    {{- include "vidfleet.labels" . | nindent 4 }}
    {{- with .root.Values.monitoring.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "vidfleet.selectorLabels" . | nindent 6 }}
  podMetricsEndpoints:
    - port: metrics
      path: /metrics
      interval: {{ .root.Values.monitoring.serviceMonitor.interval }}
      scrapeTimeout: {{ .root.Values.monitoring.serviceMonitor.scrapeTimeout }}
{{- end -}}

{{/* PodDisruptionBudget; call with (dict "root" $ "component" "capture" "values" .Values.capture). */}}
{{- define "vidfleet.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "vidfleet.componentName" . }}
  labels:
    {{- include "vidfleet.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "vidfleet.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* Whether KEDA needs credentials or TLS settings for Redis (a TriggerAuthentication). */}}
{{- define "vidfleet.keda.redisAuth" -}}
{{- if or (include "vidfleet.redis.hasPassword" .) (include "vidfleet.redis.tls" .) (and (not .Values.redis.enabled) .Values.redis.external.username) -}}true{{- end -}}
{{- end -}}
