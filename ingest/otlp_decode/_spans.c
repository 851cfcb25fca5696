/* The optional C decoder of OTLP/protobuf trace exports (`ingest.otlp_decode._spans`), built by pip when a C
 * compiler is at hand.
 *
 * `decode(body, key_value, resource_of, scope_of, span_view, latest, min_time, max_attributes, max_spans)` walks
 * the wire format of an ExportTraceServiceRequest and returns its spans as `span_view` objects, exactly as
 * ingest.otlp_decode.protobuf.decode_traces builds them, or None when the body is anything but the plain shape
 * that path takes without a second thought: a malformed body, a span with events or links, a span the Python code
 * would reject (ids, times, too many attributes), a message field sent twice, a wire type a field does not have,
 * more spans than `max_spans`, an attribute the Python code refuses. The caller then decodes the body in Python,
 * which says what is wrong; so this module decides nothing, it only skips work.
 *
 * What it saves is Python's per-span work: a bytes object per attribute, its hash and dict lookup, the message
 * attribute reads. Span attributes are looked up by their serialized KeyValue in a table of this module (model,
 * provider, team ... repeat from span to span); a miss asks `key_value(raw)` (the Python decoder's cache, which
 * validates and decodes), and keeps its answer when the value is an immutable scalar. Resource and scope are
 * decoded by `resource_of(raw)` and `scope_of(raw)`, once per ResourceSpans / ScopeSpans.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* wire format                                                                                                  */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    uint32_t number;
    int wire_type;
    uint64_t value;      /* varint, fixed32, fixed64 */
    const uint8_t *data; /* length-delimited */
    Py_ssize_t size;
} Field;

/* A varint of at most `max_bytes` bytes: 10 for a value, 5 for a tag or a length (protobuf refuses longer ones). */
static int read_varint(const uint8_t **at, const uint8_t *end, uint64_t *out, int max_bytes) {
    const uint8_t *p = *at;
    uint64_t value = 0;
    for (int shift = 0; shift < 7 * max_bytes && p < end; shift += 7) {
        uint8_t byte = *p++;
        if (shift == 63 && byte > 1) return 0; /* past 64 bits: leave it to protobuf */
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *at = p;
            *out = value;
            return 1;
        }
    }
    return 0;
}

/* The next field of a message; 0 at a malformed one or a group (deprecated wire types 3 and 4). */
static int next_field(const uint8_t **at, const uint8_t *end, Field *field) {
    uint64_t tag, size;
    if (!read_varint(at, end, &tag, 5) || tag > 0xFFFFFFFFu) return 0;
    field->number = (uint32_t)(tag >> 3);
    field->wire_type = (int)(tag & 7);
    if (field->number == 0) return 0;
    const uint8_t *p = *at;
    switch (field->wire_type) {
    case WT_VARINT:
        return read_varint(at, end, &field->value, 10);
    case WT_I64:
        if (end - p < 8) return 0;
        memcpy(&field->value, p, 8); /* little-endian machines only: see setup.py */
        *at = p + 8;
        return 1;
    case WT_I32: {
        uint32_t small;
        if (end - p < 4) return 0;
        memcpy(&small, p, 4);
        field->value = small;
        *at = p + 4;
        return 1;
    }
    case WT_LEN:
        if (!read_varint(at, end, &size, 5) || size > (uint64_t)(end - *at)) return 0;
        field->data = *at;
        field->size = (Py_ssize_t)size;
        *at += size;
        return 1;
    default:
        return 0;
    }
}

/* A proto3 string field protobuf would refuse unless it is UTF-8. */
static int valid_text(const uint8_t *data, Py_ssize_t size) {
    for (Py_ssize_t i = 0; i < size; i++) {
        if (data[i] >= 0x80) {
            PyObject *text = PyUnicode_DecodeUTF8((const char *)data, size, NULL);
            if (text == NULL) {
                PyErr_Clear();
                return 0;
            }
            Py_DECREF(text);
            return 1;
        }
    }
    return 1;
}

static PyObject *text_of(const uint8_t *data, Py_ssize_t size) {
    PyObject *text = PyUnicode_DecodeUTF8((const char *)data, size, NULL);
    if (text == NULL) PyErr_Clear(); /* not UTF-8: protobuf refuses the body, the caller says so */
    return text;
}

static PyObject *hex_of(const uint8_t *data, Py_ssize_t size) {
    static const char digits[] = "0123456789abcdef";
    PyObject *text = PyUnicode_New(size * 2, 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < size; i++) {
        out[2 * i] = (Py_UCS1)digits[data[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[data[i] & 15];
    }
    return text;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* serialized KeyValue -> (key, value), for values that cannot change under a caller: str, int, float, bool,    */
/* bytes, None                                                                                                  */

#define TABLE_SLOTS 32768u /* a power of two, twice MAX_ENTRIES */
#define MAX_ENTRIES 16384u /* as the Python decoder's cache; a full table is emptied */
#define MAX_CACHED_BYTES 160

typedef struct {
    uint64_t hash;
    Py_ssize_t size;
    uint8_t *raw; /* NULL: a free slot */
    PyObject *pair;
} Entry;

static Entry table[TABLE_SLOTS];
static unsigned entries;

static uint64_t hash_of(const uint8_t *data, Py_ssize_t size) {
    uint64_t hash = 0x9E3779B97F4A7C15ull ^ (uint64_t)size;
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, data, 8);
        hash = (hash ^ word) * 0xFF51AFD7ED558CCDull;
        hash ^= hash >> 32;
        data += 8;
        size -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, data, (size_t)size);
    hash = (hash ^ tail) * 0xC4CEB9FE1A85EC53ull;
    return hash ^ (hash >> 29);
}

static void table_clear(void) {
    for (unsigned i = 0; i < TABLE_SLOTS; i++) {
        if (table[i].raw != NULL) {
            PyMem_Free(table[i].raw);
            Py_DECREF(table[i].pair);
            table[i].raw = NULL;
            table[i].pair = NULL;
        }
    }
    entries = 0;
}

static int immutable_scalar(PyObject *value) {
    return value == Py_None || value == Py_True || value == Py_False || PyUnicode_CheckExact(value) ||
           PyLong_CheckExact(value) || PyFloat_CheckExact(value) || PyBytes_CheckExact(value);
}

/* A new reference to the (key, value) pair of a serialized KeyValue, or NULL with an exception set. */
static PyObject *key_value_of(const uint8_t *raw, Py_ssize_t size, PyObject *key_value) {
    uint64_t hash = 0;
    unsigned slot;
    if (size <= MAX_CACHED_BYTES) {
        hash = hash_of(raw, size);
        for (slot = (unsigned)hash & (TABLE_SLOTS - 1); table[slot].raw != NULL; slot = (slot + 1) & (TABLE_SLOTS - 1)) {
            Entry *entry = &table[slot];
            if (entry->hash == hash && entry->size == size && memcmp(entry->raw, raw, (size_t)size) == 0) {
                Py_INCREF(entry->pair);
                return entry->pair;
            }
        }
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)raw, size);
    if (bytes == NULL) return NULL;
    PyObject *pair = PyObject_CallOneArg(key_value, bytes);
    Py_DECREF(bytes);
    if (pair == NULL) return NULL;
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0))) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "key_value must return a (str, value) tuple");
        return NULL;
    }
    if (size <= MAX_CACHED_BYTES && immutable_scalar(PyTuple_GET_ITEM(pair, 1))) {
        /* Probed again: the call may have let another thread fill or empty the table meanwhile. */
        if (entries >= MAX_ENTRIES) table_clear();
        for (slot = (unsigned)hash & (TABLE_SLOTS - 1); table[slot].raw != NULL; slot = (slot + 1) & (TABLE_SLOTS - 1)) {
            Entry *entry = &table[slot];
            if (entry->hash == hash && entry->size == size && memcmp(entry->raw, raw, (size_t)size) == 0)
                return pair;
        }
        uint8_t *copy = PyMem_Malloc(size > 0 ? (size_t)size : 1);
        if (copy != NULL) {
            memcpy(copy, raw, (size_t)size);
            table[slot].hash = hash;
            table[slot].size = size;
            table[slot].raw = copy;
            Py_INCREF(pair);
            table[slot].pair = pair;
            entries++;
        }
    }
    return pair;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* the export                                                                                                   */

typedef struct {
    PyObject *key_value, *resource_of, *scope_of, *span_view;
    uint64_t latest, min_time;
    Py_ssize_t max_attributes, max_spans, spans_seen;
    PyObject *spans; /* list */
} Decoder;

#define NOT_PLAIN 0 /* the body is left to the Python decoder */
#define DONE 1
#define FAILED -1 /* an exception is set */

static const uint8_t ZERO[16];

static int enum_value(uint64_t raw, long *out) {
    if (raw <= 0x7FFFFFFFu) {
        *out = (long)raw;
        return 1;
    }
    if (raw >= 0xFFFFFFFF80000000ull) { /* a negative int32, sign-extended */
        *out = (long)(int64_t)raw;
        return 1;
    }
    return 0;
}

static int decode_span(Decoder *d, const uint8_t *at, const uint8_t *end, PyObject *resource, PyObject *scope_name,
                       PyObject *scope_version) {
    const uint8_t *tid = NULL, *sid = NULL, *psid = NULL, *name = NULL, *status_at = NULL;
    Py_ssize_t tid_size = 0, sid_size = 0, psid_size = 0, name_size = 0, status_size = 0, attribute_count = 0;
    uint64_t start = 0, finish = 0;
    long kind = 0;
    int status_seen = 0;
    Field field;
    const uint8_t *p = at;
    while (p < end) {
        if (!next_field(&p, end, &field)) return NOT_PLAIN;
        int wt = field.wire_type;
        switch (field.number) {
        case 1: if (wt != WT_LEN) return NOT_PLAIN; tid = field.data; tid_size = field.size; break;
        case 2: if (wt != WT_LEN) return NOT_PLAIN; sid = field.data; sid_size = field.size; break;
        case 3: if (wt != WT_LEN || !valid_text(field.data, field.size)) return NOT_PLAIN; break;
        case 4: if (wt != WT_LEN) return NOT_PLAIN; psid = field.data; psid_size = field.size; break;
        case 5: if (wt != WT_LEN) return NOT_PLAIN; name = field.data; name_size = field.size; break;
        case 6: if (wt != WT_VARINT || !enum_value(field.value, &kind)) return NOT_PLAIN; break;
        case 7: if (wt != WT_I64) return NOT_PLAIN; start = field.value; break;
        case 8: if (wt != WT_I64) return NOT_PLAIN; finish = field.value; break;
        case 9: if (wt != WT_LEN) return NOT_PLAIN; attribute_count++; break;
        case 10: case 12: case 14: if (wt != WT_VARINT) return NOT_PLAIN; break;
        case 11: case 13: return NOT_PLAIN; /* events, links */
        case 15:
            if (wt != WT_LEN || status_seen) return NOT_PLAIN; /* a message sent twice is merged: protobuf's job */
            status_seen = 1;
            status_at = field.data;
            status_size = field.size;
            break;
        case 16: if (wt != WT_I32) return NOT_PLAIN; break;
        default: break; /* unknown fields are skipped, as protobuf does */
        }
    }
    if (tid_size != 16 || sid_size != 8 || memcmp(tid, ZERO, 16) == 0 || memcmp(sid, ZERO, 8) == 0 ||
        (psid_size != 0 && psid_size != 8) || start < d->min_time || start > d->latest || finish < start ||
        attribute_count > d->max_attributes)
        return NOT_PLAIN; /* rejected: the Python decoder says why */

    long status_code = 0;
    const uint8_t *message = NULL;
    Py_ssize_t message_size = 0;
    if (status_at != NULL) {
        const uint8_t *q = status_at, *status_end = status_at + status_size;
        while (q < status_end) {
            if (!next_field(&q, status_end, &field)) return NOT_PLAIN;
            if (field.number == 2) {
                if (field.wire_type != WT_LEN) return NOT_PLAIN;
                message = field.data;
                message_size = field.size;
            } else if (field.number == 3) {
                if (field.wire_type != WT_VARINT || !enum_value(field.value, &status_code)) return NOT_PLAIN;
            }
        }
    }

    PyObject *values[14] = {NULL};
    PyObject *attributes = _PyDict_NewPresized(attribute_count); /* no resizing while it fills */
    if (attributes == NULL) return FAILED;
    int outcome = FAILED;
    for (p = at; p < end;) {
        if (!next_field(&p, end, &field)) { /* read once already: only a body changed meanwhile fails */
            outcome = NOT_PLAIN;
            goto done;
        }
        if (field.number != 9) continue;
        PyObject *pair = key_value_of(field.data, field.size, d->key_value);
        if (pair == NULL) {
            PyErr_Clear(); /* refused (a Reject, a malformed value): the Python decoder says so */
            outcome = NOT_PLAIN;
            goto done;
        }
        int set = PyDict_SetItem(attributes, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        Py_DECREF(pair);
        if (set < 0) goto done;
    }
    values[0] = hex_of(tid, 16);
    values[1] = hex_of(sid, 8);
    if (psid_size == 8 && memcmp(psid, ZERO, 8) != 0) {
        values[2] = hex_of(psid, 8);
    } else {
        Py_INCREF(Py_None);
        values[2] = Py_None;
    }
    values[3] = text_of(name != NULL ? name : ZERO, name_size);
    values[8] = text_of(message != NULL ? message : ZERO, message_size);
    if (values[3] == NULL || values[8] == NULL) {
        outcome = PyErr_Occurred() ? FAILED : NOT_PLAIN;
        goto done;
    }
    values[4] = PyLong_FromLong(kind);
    values[5] = PyLong_FromUnsignedLongLong(start);
    values[6] = PyLong_FromUnsignedLongLong(finish);
    values[7] = PyLong_FromLong(status_code);
    values[10] = PyList_New(0); /* events */
    if (!values[0] || !values[1] || !values[4] || !values[5] || !values[6] || !values[7] || !values[10]) goto done;
    values[9] = attributes;
    attributes = NULL;
    Py_INCREF(resource);
    values[11] = resource;
    Py_INCREF(scope_name);
    values[12] = scope_name;
    Py_INCREF(scope_version);
    values[13] = scope_version;
    PyObject *span = PyObject_Vectorcall(d->span_view, values, 14, NULL);
    if (span == NULL) goto done;
    int appended = PyList_Append(d->spans, span);
    Py_DECREF(span);
    outcome = appended < 0 ? FAILED : DONE;
done:
    Py_XDECREF(attributes);
    for (int i = 0; i < 14; i++) Py_XDECREF(values[i]);
    return outcome;
}

/* Call `function(raw)` for a resource or scope message (b"" when it is absent). */
static PyObject *call_on(PyObject *function, const uint8_t *data, Py_ssize_t size) {
    PyObject *bytes = PyBytes_FromStringAndSize(data != NULL ? (const char *)data : "", data != NULL ? size : 0);
    if (bytes == NULL) return NULL;
    PyObject *result = PyObject_CallOneArg(function, bytes);
    Py_DECREF(bytes);
    return result;
}

/* The first pass over a ResourceSpans or a ScopeSpans, which share a layout: field 1 a message (the resource, the
 * scope; sent at most once), field 2 repeated messages (scope spans, spans), field 3 the schema URL. 0: not plain. */
static int read_layout(const uint8_t *at, const uint8_t *end, const uint8_t **head, Py_ssize_t *head_size,
                       Py_ssize_t *items) {
    int head_seen = 0;
    Field field;
    *head = NULL;
    *head_size = 0;
    *items = 0;
    while (at < end) {
        if (!next_field(&at, end, &field)) return 0;
        if (field.number == 1) {
            if (field.wire_type != WT_LEN || head_seen) return 0;
            head_seen = 1;
            *head = field.data;
            *head_size = field.size;
        } else if (field.number == 2) {
            if (field.wire_type != WT_LEN) return 0;
            ++*items;
        } else if (field.number == 3) {
            if (field.wire_type != WT_LEN || !valid_text(field.data, field.size)) return 0;
        }
    }
    return 1;
}

static int decode_scope_spans(Decoder *d, const uint8_t *at, const uint8_t *end, PyObject *resource) {
    const uint8_t *scope;
    Py_ssize_t scope_size, spans;
    if (!read_layout(at, end, &scope, &scope_size, &spans)) return NOT_PLAIN;
    d->spans_seen += spans;
    if (d->spans_seen > d->max_spans) return NOT_PLAIN;
    Field field;
    const uint8_t *p;
    PyObject *names = call_on(d->scope_of, scope, scope_size);
    if (names == NULL) {
        PyErr_Clear();
        return NOT_PLAIN;
    }
    if (!PyTuple_CheckExact(names) || PyTuple_GET_SIZE(names) != 2) {
        Py_DECREF(names);
        PyErr_SetString(PyExc_TypeError, "scope_of must return a (name, version) tuple");
        return FAILED;
    }
    int outcome = DONE;
    for (p = at; p < end && outcome == DONE;) {
        if (!next_field(&p, end, &field)) { /* read once already: only a body changed meanwhile fails */
            outcome = NOT_PLAIN;
            break;
        }
        if (field.number == 2)
            outcome = decode_span(d, field.data, field.data + field.size, resource, PyTuple_GET_ITEM(names, 0),
                                  PyTuple_GET_ITEM(names, 1));
    }
    Py_DECREF(names);
    return outcome;
}

static int decode_resource_spans(Decoder *d, const uint8_t *at, const uint8_t *end) {
    const uint8_t *resource_at;
    Py_ssize_t resource_size, scope_spans;
    if (!read_layout(at, end, &resource_at, &resource_size, &scope_spans)) return NOT_PLAIN;
    Field field;
    const uint8_t *p;
    PyObject *resource = call_on(d->resource_of, resource_at, resource_size);
    if (resource == NULL) {
        PyErr_Clear();
        return NOT_PLAIN;
    }
    int outcome = DONE;
    for (p = at; p < end && outcome == DONE;) {
        if (!next_field(&p, end, &field)) { /* read once already: only a body changed meanwhile fails */
            outcome = NOT_PLAIN;
            break;
        }
        if (field.number == 2) outcome = decode_scope_spans(d, field.data, field.data + field.size, resource);
    }
    Py_DECREF(resource);
    return outcome;
}

static PyObject *decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "decode takes 9 arguments");
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0])) Py_RETURN_NONE; /* bytes only: nothing can change them under the walk */
    Py_buffer body;
    if (PyObject_GetBuffer(args[0], &body, PyBUF_SIMPLE) < 0) return NULL;
    Decoder d = {args[1], args[2], args[3], args[4], 0, 0, 0, 0, 0, NULL};
    unsigned long long latest = PyLong_AsUnsignedLongLong(args[5]);
    unsigned long long min_time = PyLong_AsUnsignedLongLong(args[6]);
    Py_ssize_t max_attributes = PyLong_AsSsize_t(args[7]);
    Py_ssize_t max_spans = PyLong_AsSsize_t(args[8]);
    if (PyErr_Occurred()) {
        PyBuffer_Release(&body);
        return NULL;
    }
    d.latest = latest;
    d.min_time = min_time;
    d.max_attributes = max_attributes;
    d.max_spans = max_spans;
    d.spans = PyList_New(0);
    if (d.spans == NULL) {
        PyBuffer_Release(&body);
        return NULL;
    }
    const uint8_t *p = body.buf, *end = p + body.len;
    int outcome = DONE;
    Field field;
    /* Every field is read before a span is built, so that a malformed tail leaves the body to protobuf at once. */
    while (p < end && outcome == DONE) {
        if (!next_field(&p, end, &field)) outcome = NOT_PLAIN;
        else if (field.number == 1 && field.wire_type != WT_LEN) outcome = NOT_PLAIN;
    }
    for (p = body.buf; p < end && outcome == DONE;) {
        if (!next_field(&p, end, &field)) { /* read once already: only a body changed meanwhile fails */
            outcome = NOT_PLAIN;
            break;
        }
        if (field.number == 1) outcome = decode_resource_spans(&d, field.data, field.data + field.size);
    }
    PyBuffer_Release(&body);
    if (outcome == DONE) return d.spans;
    Py_DECREF(d.spans);
    if (outcome == FAILED) return NULL;
    Py_RETURN_NONE;
}

static PyObject *clear_cache(PyObject *module, PyObject *unused) {
    table_clear();
    Py_RETURN_NONE;
}

static PyObject *cache_size(PyObject *module, PyObject *unused) {
    return PyLong_FromUnsignedLong(entries);
}

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(body, key_value, resource_of, scope_of, span_view, latest, min_time, max_attributes, max_spans)"
     " -> list of spans, or None when the Python decoder must take the body"},
    {"clear_cache", clear_cache, METH_NOARGS, "Forget the decoded attributes kept so far."},
    {"cache_size", cache_size, METH_NOARGS, "How many decoded attributes are kept."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_spans", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__spans(void) {
    return PyModule_Create(&module_def);
}
