{{- define "common.labels" -}}
app.kubernetes.io/part-of: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Chart.Name }}
{{- end -}}
