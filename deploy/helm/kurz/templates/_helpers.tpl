{{- define "kurz.labels" -}}
app.kubernetes.io/name: kurz
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The image, pinned to the chart's appVersion unless a tag is given. */}}
{{- define "kurz.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Pod settings every Kurz service shares: no service links (Kubernetes would inject
<RELEASE>_<SERVICE>_PORT variables), non-root with the runtime's default seccomp profile, and a grace
period that covers the preStop pause and the shutdown deadline. */}}
{{- define "kurz.podSpec" -}}
enableServiceLinks: false
terminationGracePeriodSeconds: {{ add .Values.shutdownTimeoutSeconds .Values.preStopSeconds 5 }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{/* Container settings every Kurz service shares. */}}
{{- define "kurz.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
lifecycle:
  # Endpoints are removed asynchronously: keep serving a moment before draining.
  preStop:
    sleep:
      seconds: {{ .Values.preStopSeconds }}
{{- end }}

{{/* Settings every Kurz service shares. */}}
{{- define "kurz.env" -}}
- name: KURZ_HTTP__LISTEN
  value: "0.0.0.0:8080"
- name: KURZ_KAFKA__BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: KURZ_KAFKA__TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: KURZ_KAFKA__PARTITIONS
  value: {{ .Values.kafka.partitions | int64 | quote }}
- name: KURZ_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | int64 | quote }}
- name: KURZ_KAFKA__SCHEMA_REGISTRY_URL
  value: {{ .Values.kafka.schemaRegistryUrl | quote }}
- name: KURZ_KAFKA__DELIVERY_TIMEOUT_MS
  value: {{ .Values.kafka.deliveryTimeoutMs | int64 | quote }}
- name: KURZ_REDIS__URL
  value: {{ .Values.redis.url | quote }}
- name: KURZ_REDIS__KEY_PREFIX
  value: {{ .Values.redis.keyPrefix | quote }}
- name: KURZ_SECRET_KEY_FILE
  value: /etc/kurz/secret.key
- name: KURZ_LOG__FORMAT
  value: {{ .Values.log.format | quote }}
- name: KURZ_LOG__ACCESS
  value: {{ .Values.log.access | quote }}
{{- with .Values.log.otlpEndpoint }}
- name: KURZ_LOG__OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: KURZ_HTTP__SHUTDOWN_TIMEOUT_MS
  value: {{ mul .Values.shutdownTimeoutSeconds 1000 | quote }}
- name: KURZ_READ_STORE__KIND
  value: {{ .Values.readStore.kind | quote }}
{{- if eq .Values.readStore.kind "scylla" }}
- name: KURZ_READ_STORE__SCYLLA__NODES
  value: {{ printf "[%s]" (join "," .Values.readStore.scylla.nodes) | quote }}
- name: KURZ_READ_STORE__SCYLLA__KEYSPACE
  value: {{ .Values.readStore.scylla.keyspace | quote }}
{{- with .Values.readStore.scylla.credentialsSecret }}
- name: KURZ_READ_STORE__SCYLLA__USERNAME
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: username}
- name: KURZ_READ_STORE__SCYLLA__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: password}
{{- end }}
{{- end }}
{{- with .Values.publicBaseUrl }}
- name: KURZ_HTTP__PUBLIC_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Settings of the services that serve the API (command-api, query-api). */}}
{{- define "kurz.apiEnv" -}}
- name: KURZ_AUTH__BOOTSTRAP_KEY_FILE
  value: /etc/kurz/admin.key
{{- end }}

{{/* librdkafka properties from a Secret: each key is a variable such as
KURZ_KAFKA__CLIENT__SASL.PASSWORD (kafka.client.<property>). */}}
{{- define "kurz.envFrom" -}}
{{- with .Values.kafka.clientSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{- define "kurz.probes" -}}
ports:
  - name: http
    containerPort: 8080
startupProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
{{- end }}
