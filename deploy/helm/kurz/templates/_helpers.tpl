{{- define "kurz.labels" -}}
app.kubernetes.io/name: kurz
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "kurz.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
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
  value: {{ .Values.kafka.partitions | quote }}
- name: KURZ_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: KURZ_KAFKA__SCHEMA_REGISTRY_URL
  value: {{ .Values.kafka.schemaRegistryUrl | quote }}
- name: KURZ_KAFKA__DELIVERY_TIMEOUT_MS
  value: {{ .Values.kafka.deliveryTimeoutMs | quote }}
- name: KURZ_REDIS__URL
  value: {{ .Values.redis.url | quote }}
- name: KURZ_REDIS__KEY_PREFIX
  value: {{ .Values.redis.keyPrefix | quote }}
- name: KURZ_SECRET_KEY_FILE
  value: /etc/kurz/secret.key
- name: KURZ_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
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

{{- define "kurz.probes" -}}
ports:
  - name: http
    containerPort: 8080
livenessProbe:
  httpGet: {path: /health, port: http}
  periodSeconds: 10
readinessProbe:
  httpGet: {path: /ready, port: http}
  periodSeconds: 5
{{- end }}
