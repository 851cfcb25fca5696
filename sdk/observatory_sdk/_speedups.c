/* Two hot spots of the SDK written in C, each byte for byte what the Python code beside it writes
 * (that code is the reference, and what runs when this module cannot be built):
 * - `text`: the canonical request text of fingerprints.py, for the types requests are made of
 *   (dict, list, tuple, str, int, float, bool, None); any other value is handed back to Python;
 * - `snapshot`: the copy of a request taken when a call starts (fingerprints.py), for the same types;
 * - `request_digests`: the prompt-prefix and request hashes of calls.py, from those texts;
 * - `pluck`: the values at the end of attribute paths of a response (calls.pluck_py);
 * - `record_attributes`: the span attributes of the usual OpenAI chat or Anthropic messages call
 *   (calls.record_attributes_py), declining anything of another shape;
 * - `encode_attributes`: a span's attributes as OTLP protobuf KeyValue fields (otlp.py), for str,
 *   bool, int, float, bytes and lists or tuples of them; any other value is handed back to Python. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define WHOLE_CHARS 4096
#define EDGE_CHARS 256
#define SAMPLE_CHARS 32
#define WHOLE_ITEMS 64
#define EDGE_ITEMS 16
#define SAMPLES 32
#define MAX_DEPTH 32

static PyObject *fallback = NULL;    /* Python: _other_text(value, depth, seen) -> str */
static PyObject *not_hashable = NULL; /* fingerprints._NotHashable */
static PyObject *empty = NULL;       /* "" */
static PyObject *text_none = NULL, *text_true = NULL, *text_false = NULL; /* "n", "t", "f" */

static int write_value(PyObject *parts, PyObject *value, Py_ssize_t depth, PyObject *seen);

static int raise_not_hashable(void)
{
    PyErr_SetNone(not_hashable);
    return -1;
}

/* Heads ("s12:", "l3:", ...) of small sizes, made once. */
#define CACHED_HEADS 256
static PyObject *heads[4][CACHED_HEADS];

static int append_head(PyObject *parts, char tag, Py_ssize_t size)
{
    int slot = tag == 's' ? 0 : tag == 'l' ? 1 : tag == 'd' ? 2 : 3;
    if (size < CACHED_HEADS && heads[slot][size] != NULL)
        return PyList_Append(parts, heads[slot][size]);
    char buffer[32];
    int length = PyOS_snprintf(buffer, sizeof buffer, "%c%zd:", tag, size);
    PyObject *head = PyUnicode_FromStringAndSize(buffer, length);
    if (head == NULL)
        return -1;
    if (size < CACHED_HEADS) {
        heads[slot][size] = head;
        return PyList_Append(parts, head);
    }
    int failed = PyList_Append(parts, head);
    Py_DECREF(head);
    return failed;
}

static int append_new(PyObject *parts, PyObject *item)
{
    if (item == NULL)
        return -1;
    int failed = PyList_Append(parts, item);
    Py_DECREF(item);
    return failed;
}

static int write_string(PyObject *parts, PyObject *value, Py_ssize_t depth)
{
    Py_ssize_t size = PyUnicode_GET_LENGTH(value);
    if (size <= WHOLE_CHARS)
        return append_head(parts, 's', size) < 0 ? -1 : PyList_Append(parts, value);
    if (depth > MAX_DEPTH)
        return raise_not_hashable();
    if (append_head(parts, 'S', size) < 0)
        return -1;
    Py_ssize_t step = (size - 2 * EDGE_CHARS) / (SAMPLES + 1);
    if (append_new(parts, PyUnicode_Substring(value, 0, EDGE_CHARS)) < 0)
        return -1;
    for (Py_ssize_t n = 1; n <= SAMPLES; n++) {
        Py_ssize_t start = EDGE_CHARS + step * n;
        if (append_new(parts, PyUnicode_Substring(value, start, start + SAMPLE_CHARS)) < 0)
            return -1;
    }
    return append_new(parts, PyUnicode_Substring(value, size - EDGE_CHARS, size));
}

/* "<tag><value>;" with the value's str() (int) or repr() (float). */
static int write_number(PyObject *parts, const char *tag, PyObject *formatted)
{
    if (formatted == NULL)
        return -1;
    PyObject *result = PyUnicode_FromFormat("%s%U;", tag, formatted);
    Py_DECREF(formatted);
    return append_new(parts, result);
}

static int write_mapping(PyObject *parts, PyObject *mapping, Py_ssize_t depth, PyObject *seen)
{
    PyObject *keys = PyDict_Keys(mapping);
    if (keys == NULL)
        return -1;
    if (PyList_Sort(keys) < 0 || append_head(parts, 'd', PyList_GET_SIZE(keys)) < 0)
        goto error;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        PyObject *item = PyDict_GetItemWithError(mapping, key); /* borrowed */
        if (item == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, key);
            goto error;
        }
        Py_INCREF(item);
        int failed = write_value(parts, key, depth + 1, seen);
        if (!failed)
            failed = write_value(parts, item, depth + 1, seen);
        Py_DECREF(item);
        if (failed)
            goto error;
    }
    Py_DECREF(keys);
    return 0;
error:
    Py_DECREF(keys);
    return -1;
}

static int write_item(PyObject *parts, PyObject *sequence, Py_ssize_t index, Py_ssize_t depth, PyObject *seen)
{
    PyObject *item = PySequence_Fast_GET_ITEM(sequence, index);
    Py_INCREF(item);
    int failed = write_value(parts, item, depth, seen);
    Py_DECREF(item);
    return failed;
}

static int write_items(PyObject *parts, PyObject *items, Py_ssize_t depth, PyObject *seen)
{
    Py_ssize_t size = PySequence_Fast_GET_SIZE(items);
    if (append_head(parts, 'l', size) < 0)
        return -1;
    if (size <= WHOLE_ITEMS) {
        for (Py_ssize_t i = 0; i < size; i++)
            if (write_item(parts, items, i, depth + 1, seen) < 0)
                return -1;
        return 0;
    }
    Py_ssize_t step = (size - 2 * EDGE_ITEMS) / (SAMPLES + 1);
    for (Py_ssize_t i = 0; i < EDGE_ITEMS; i++)
        if (write_item(parts, items, i, depth + 1, seen) < 0)
            return -1;
    for (Py_ssize_t n = 1; n <= SAMPLES; n++)
        if (write_item(parts, items, EDGE_ITEMS + step * n, depth + 1, seen) < 0)
            return -1;
    for (Py_ssize_t i = size - EDGE_ITEMS; i < size; i++)
        if (write_item(parts, items, i, depth + 1, seen) < 0)
            return -1;
    return 0;
}

static int write_container(PyObject *parts, PyObject *value, Py_ssize_t depth, PyObject *seen)
{
    return PyDict_CheckExact(value) ? write_mapping(parts, value, depth, seen) : write_items(parts, value, depth, seen);
}

/* A container's text, joined so that `seen` can keep it for the next time it is met. */
static int write_remembered(PyObject *parts, PyObject *value, Py_ssize_t depth, PyObject *seen)
{
    PyObject *key = PyLong_FromVoidPtr(value);
    if (key == NULL)
        return -1;
    PyObject *known = PyDict_GetItemWithError(seen, key); /* borrowed */
    if (known != NULL) {
        Py_DECREF(key);
        return PyList_Append(parts, known);
    }
    if (PyErr_Occurred())
        goto error;
    PyObject *own = PyList_New(0);
    if (own == NULL)
        goto error;
    if (write_container(own, value, depth, seen) < 0) {
        Py_DECREF(own);
        goto error;
    }
    PyObject *text = PyUnicode_Join(empty, own);
    Py_DECREF(own);
    if (text == NULL)
        goto error;
    int failed = PyDict_SetItem(seen, key, text) < 0 || PyList_Append(parts, text) < 0;
    Py_DECREF(text);
    Py_DECREF(key);
    return failed ? -1 : 0;
error:
    Py_DECREF(key);
    return -1;
}

static int write_value(PyObject *parts, PyObject *value, Py_ssize_t depth, PyObject *seen)
{
    if (PyUnicode_CheckExact(value))
        return write_string(parts, value, depth);
    if (PyLong_CheckExact(value))
        return write_number(parts, "i", PyObject_Str(value));
    if (value == Py_None)
        return PyList_Append(parts, text_none);
    if (PyBool_Check(value))
        return PyList_Append(parts, value == Py_True ? text_true : text_false);
    if (PyFloat_CheckExact(value))
        return write_number(parts, "r", PyObject_Repr(value));
    if (depth > MAX_DEPTH) /* deeper than any request: a cycle */
        return raise_not_hashable();
    if (PyDict_CheckExact(value) || PyList_CheckExact(value) || PyTuple_CheckExact(value))
        return seen == Py_None ? write_container(parts, value, depth, seen) : write_remembered(parts, value, depth, seen);
    PyObject *depth_object = PyLong_FromSsize_t(depth);
    if (depth_object == NULL)
        return -1;
    PyObject *result = PyObject_CallFunctionObjArgs(fallback, value, depth_object, seen, NULL);
    Py_DECREF(depth_object);
    if (result != NULL && !PyUnicode_Check(result)) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_TypeError, "the fallback writer returned a non-str");
        return -1;
    }
    return append_new(parts, result);
}

static PyObject *text_of(PyObject *value, Py_ssize_t depth, PyObject *seen)
{
    if (Py_EnterRecursiveCall(" while writing a canonical request text"))
        return NULL;
    PyObject *parts = PyList_New(0);
    PyObject *result = NULL;
    if (parts != NULL && write_value(parts, value, depth, seen) == 0)
        result = PyList_GET_SIZE(parts) == 1 ? Py_NewRef(PyList_GET_ITEM(parts, 0)) : PyUnicode_Join(empty, parts);
    Py_XDECREF(parts);
    Py_LeaveRecursiveCall();
    return result;
}

static PyObject *canonical_text(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "text(value, depth, seen)");
        return NULL;
    }
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[1]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    PyObject *seen = args[2];
    if (seen != Py_None && !PyDict_CheckExact(seen)) {
        PyErr_SetString(PyExc_TypeError, "seen must be a dict or None");
        return NULL;
    }
    return text_of(args[0], depth, seen);
}

/* -- request hashes (calls.request_hashes_py) ------------------------------------------------- */

static PyObject *sha256 = NULL;    /* hashlib.sha256 */
static PyObject *hexdigest = NULL; /* "hexdigest" */

/* fingerprints.canonical_text: the text, or None (and no error) when the value has no stable form. */
static PyObject *text_or_none(PyObject *value, Py_ssize_t depth, PyObject *seen)
{
    PyObject *text = text_of(value, depth, seen);
    if (text != NULL)
        return text;
    if (PyErr_ExceptionMatches(not_hashable) || PyErr_ExceptionMatches(PyExc_TypeError) ||
        PyErr_ExceptionMatches(PyExc_ValueError) || PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    return NULL;
}

/* fingerprints.digest: sha256 of the text's UTF-8 (lone surrogates passed through), first 16 bytes as hex. */
static PyObject *digest_of(PyObject *text)
{
    PyObject *data = PyUnicode_AsEncodedString(text, "utf-8", "surrogatepass");
    if (data == NULL)
        return NULL;
    PyObject *hasher = PyObject_CallOneArg(sha256, data);
    Py_DECREF(data);
    if (hasher == NULL)
        return NULL;
    PyObject *hex = PyObject_CallMethodNoArgs(hasher, hexdigest);
    Py_DECREF(hasher);
    if (hex == NULL)
        return NULL;
    PyObject *result = PyUnicode_Substring(hex, 0, 32);
    Py_DECREF(hex);
    return result;
}

/* The prompt-prefix and request hashes (each a new reference, None when its text cannot be written) of what
 * calls._hash_pair_py computes once the operation has picked the prompt prefix and the semantic request. */
static int digests(PyObject *prefix, PyObject *request, PyObject *head, PyObject *known, Py_ssize_t kept,
                   PyObject **prefix_out, PyObject **request_out)
{
    if (fallback == NULL || sha256 == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() and configure_digest() first");
        return -1;
    }
    PyObject *seen = PyDict_New();
    if (seen == NULL)
        return -1;
    PyObject *prefix_hash = Py_NewRef(Py_None), *request_hash = NULL, *text = NULL;
    if (prefix != Py_None) {
        text = text_or_none(prefix, 0, seen);
        if (text == NULL)
            goto error;
        if (text != Py_None) {
            PyObject *hash = PyDict_GetItemWithError(known, text); /* borrowed */
            if (hash != NULL) {
                Py_SETREF(prefix_hash, Py_NewRef(hash));
            }
            else {
                if (PyErr_Occurred())
                    goto error;
                Py_SETREF(prefix_hash, digest_of(text));
                if (prefix_hash == NULL)
                    goto error;
                if (PyDict_GET_SIZE(known) >= kept)
                    PyDict_Clear(known);
                if (PyDict_SetItem(known, text, prefix_hash) < 0)
                    goto error;
            }
        }
        Py_CLEAR(text);
    }
    text = text_or_none(request, 1, seen);
    if (text == NULL)
        goto error;
    if (text == Py_None) {
        request_hash = Py_NewRef(Py_None);
    }
    else {
        PyObject *whole = PyUnicode_Concat(head, text);
        if (whole == NULL)
            goto error;
        request_hash = digest_of(whole);
        Py_DECREF(whole);
        if (request_hash == NULL)
            goto error;
    }
    Py_DECREF(text);
    Py_DECREF(seen);
    *prefix_out = prefix_hash;
    *request_out = request_hash;
    return 0;
error:
    Py_XDECREF(text);
    Py_XDECREF(prefix_hash);
    Py_XDECREF(request_hash);
    Py_DECREF(seen);
    return -1;
}

/* request_digests(prefix, request, head, known, kept) -> (prefix hash or None, request hash or None). */
static PyObject *request_digests(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyUnicode_Check(args[2]) || !PyDict_CheckExact(args[3])) {
        PyErr_SetString(PyExc_TypeError, "request_digests(prefix, request, head: str, known: dict, kept: int)");
        return NULL;
    }
    Py_ssize_t kept = PyLong_AsSsize_t(args[4]);
    if (kept == -1 && PyErr_Occurred())
        return NULL;
    PyObject *prefix_hash, *request_hash;
    if (digests(args[0], args[1], args[2], args[3], kept, &prefix_hash, &request_hash) < 0)
        return NULL;
    PyObject *result = PyTuple_Pack(2, prefix_hash, request_hash);
    Py_DECREF(prefix_hash);
    Py_DECREF(request_hash);
    return result;
}

static PyObject *configure_digest(PyObject *module, PyObject *constructor)
{
    Py_INCREF(constructor);
    Py_XSETREF(sha256, constructor);
    Py_RETURN_NONE;
}

static PyObject *configure(PyObject *module, PyObject *args)
{
    PyObject *writer, *error;
    if (!PyArg_ParseTuple(args, "OO", &writer, &error))
        return NULL;
    Py_INCREF(writer);
    Py_XSETREF(fallback, writer);
    Py_INCREF(error);
    Py_XSETREF(not_hashable, error);
    Py_RETURN_NONE;
}

/* -- request snapshots (fingerprints.snapshot) ------------------------------------------------- */

/* GC note. What a call leaves for the pipeline (the snapshot's containers, the plucked values, the record tuple) is
 * kept until its chunk of BUILD_CHUNK calls is built, then freed by reference counting; so it is made untracked by
 * the cyclic collector. It is made here, fresh, and holds no cycle (a cyclic request is cut at SNAPSHOT_DEPTH), so
 * the collector has nothing to find in it. Tracked, up to 256 records' worth (~1,000 objects) was traversed by every
 * young collection (measured with openai loaded: 35-49 µs each, 3-5 µs untracked) and promoted by the middle one
 * into the oldest generation, whose growth is what sets off full collections of the app's whole heap. Objects it
 * refers to stay tracked as before. */

#define SNAPSHOT_DEPTH (MAX_DEPTH + 4)
static PyObject *snapshot_fallback = NULL; /* Python: fingerprints._snapshot_other(value, depth) */
static PyObject *unreadable = NULL;        /* fingerprints._UNREADABLE */

static int shared(PyObject *value)
{
    return PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value) ||
           PyBool_Check(value) || value == Py_None || PyBytes_CheckExact(value);
}

static PyObject *snapshot_value(PyObject *value, Py_ssize_t depth)
{
    if (shared(value))
        return Py_NewRef(value);
    if (depth > SNAPSHOT_DEPTH)
        return Py_NewRef(unreadable);
    if (PyDict_CheckExact(value)) {
        PyObject *copy = PyDict_Copy(value);
        if (copy == NULL)
            return NULL;
        PyObject *key, *item;
        Py_ssize_t position = 0;
        while (PyDict_Next(copy, &position, &key, &item)) {
            if (shared(item))
                continue;
            PyObject *inner = snapshot_value(item, depth + 1);
            if (inner == NULL || PyDict_SetItem(copy, key, inner) < 0) {
                Py_XDECREF(inner);
                Py_DECREF(copy);
                return NULL;
            }
            Py_DECREF(inner);
        }
        PyObject_GC_UnTrack(copy); /* see GC note above */
        return copy;
    }
    int is_list = PyList_CheckExact(value);
    if ((is_list || PyTuple_CheckExact(value)) && PySequence_Fast_GET_SIZE(value) <= WHOLE_ITEMS) {
        Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
        PyObject *items = is_list ? PyList_New(size) : PyTuple_New(size);
        if (items == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < size; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(value, i);
            PyObject *inner = shared(item) ? Py_NewRef(item) : snapshot_value(item, depth + 1);
            if (inner == NULL) {
                Py_DECREF(items);
                return NULL;
            }
            if (is_list)
                PyList_SET_ITEM(items, i, inner);
            else
                PyTuple_SET_ITEM(items, i, inner);
        }
        PyObject_GC_UnTrack(items); /* see GC note above */
        return items;
    }
    PyObject *depth_object = PyLong_FromSsize_t(depth);
    if (depth_object == NULL)
        return NULL;
    PyObject *result = PyObject_CallFunctionObjArgs(snapshot_fallback, value, depth_object, NULL);
    Py_DECREF(depth_object);
    return result;
}

static PyObject *snapshot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "snapshot(value, depth=0)");
        return NULL;
    }
    if (snapshot_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_snapshot() first");
        return NULL;
    }
    Py_ssize_t depth = 0;
    if (nargs == 2 && (depth = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    return snapshot_value(args[0], depth);
}

static PyObject *configure_snapshot(PyObject *module, PyObject *args)
{
    PyObject *other, *marker;
    if (!PyArg_ParseTuple(args, "OO", &other, &marker))
        return NULL;
    Py_INCREF(other);
    Py_XSETREF(snapshot_fallback, other);
    Py_INCREF(marker);
    Py_XSETREF(unreadable, marker);
    Py_RETURN_NONE;
}

/* -- response values (calls.pluck_py) --------------------------------------------------------- */

static int is_star(PyObject *name)
{
    return PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) == 1 && PyUnicode_READ_CHAR(name, 0) == '*';
}

/* getattr(value, name, None); a new reference, NULL on an error other than AttributeError. */
static PyObject *attribute_or_none(PyObject *value, PyObject *name)
{
    PyObject *result = PyObject_GetAttr(value, name);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    return result;
}

static PyObject *follow(PyObject *value, PyObject *path, Py_ssize_t start)
{
    Py_ssize_t length = PyTuple_GET_SIZE(path);
    Py_INCREF(value);
    for (Py_ssize_t index = start; index < length; index++) {
        if (value == Py_None)
            return value;
        PyObject *name = PyTuple_GET_ITEM(path, index);
        if (is_star(name)) {
            if (!PyList_Check(value) && !PyTuple_Check(value)) {
                Py_DECREF(value);
                return Py_NewRef(Py_None);
            }
            Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
            PyObject *items = PyTuple_New(size);
            for (Py_ssize_t i = 0; items != NULL && i < size; i++) {
                /* the list cannot change meanwhile unless a getattr runs Python that changes it: re-check */
                if (i >= PySequence_Fast_GET_SIZE(value)) {
                    PyErr_SetString(PyExc_RuntimeError, "a response list changed while it was read");
                    Py_CLEAR(items);
                    break;
                }
                PyObject *item = PySequence_Fast_GET_ITEM(value, i);
                Py_INCREF(item);
                PyObject *inner = follow(item, path, index + 1);
                Py_DECREF(item);
                if (inner == NULL) {
                    Py_CLEAR(items);
                    break;
                }
                PyTuple_SET_ITEM(items, i, inner);
            }
            Py_DECREF(value);
            if (items != NULL)
                PyObject_GC_UnTrack(items); /* see the GC note above snapshot_value */
            return items;
        }
        PyObject *next = attribute_or_none(value, name);
        Py_DECREF(value);
        if (next == NULL)
            return NULL;
        value = next;
    }
    return value;
}

static PyObject *pluck(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "pluck(response, paths: tuple of tuples)");
        return NULL;
    }
    PyObject *paths = args[1];
    Py_ssize_t count = PyTuple_GET_SIZE(paths);
    PyObject *values = PyTuple_New(count);
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *path = PyTuple_GET_ITEM(paths, i);
        if (!PyTuple_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "each path is a tuple of attribute names");
            Py_DECREF(values);
            return NULL;
        }
        PyObject *value = follow(args[0], path, 0);
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyTuple_SET_ITEM(values, i, value);
    }
    PyObject_GC_UnTrack(values); /* see the GC note above snapshot_value */
    return values;
}

/* -- OTLP attributes ------------------------------------------------------------------------- */

static PyObject *any_value_fallback = NULL; /* Python: otlp._any_value(value) -> bytes */
static PyObject *sixty_four = NULL;         /* 64: the shift to the high half of a trace id */
static PyObject *zero = NULL;               /* 0: encode_span's default status code */

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

static int reserve(Buffer *buffer, Py_ssize_t more)
{
    if (buffer->size + more <= buffer->capacity)
        return 0;
    Py_ssize_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity < buffer->size + more)
        capacity *= 2;
    char *data = PyMem_Realloc(buffer->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

static int put(Buffer *buffer, const void *bytes, Py_ssize_t size)
{
    if (reserve(buffer, size) < 0)
        return -1;
    memcpy(buffer->data + buffer->size, bytes, size);
    buffer->size += size;
    return 0;
}

static int put_varint(Buffer *buffer, unsigned long long value)
{
    unsigned char bytes[10];
    int size = 0;
    while (value >= 128) {
        bytes[size++] = (unsigned char)((value & 0x7F) | 0x80);
        value >>= 7;
    }
    bytes[size++] = (unsigned char)value;
    return put(buffer, bytes, size);
}

/* A length-delimited field: tag, length, payload. */
static int put_field(Buffer *buffer, unsigned char tag, const char *payload, Py_ssize_t size)
{
    if (put(buffer, &tag, 1) < 0 || put_varint(buffer, (unsigned long long)size) < 0)
        return -1;
    return put(buffer, payload, size);
}

static int put_any_value(Buffer *buffer, PyObject *value, int depth);

/* A text as a length-delimited field, encoded as value.encode("utf-8", "replace") does. */
static int put_text_field(Buffer *buffer, unsigned char tag, PyObject *value)
{
    if (!PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "expected a str");
        return -1;
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
    if (utf8 != NULL)
        return put_field(buffer, tag, utf8, size);
    PyErr_Clear();
    PyObject *encoded = PyUnicode_AsEncodedString(value, "utf-8", "replace");
    if (encoded == NULL)
        return -1;
    int failed = put_field(buffer, tag, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return failed;
}

static int put_text_value(Buffer *buffer, PyObject *value)
{
    return put_text_field(buffer, 0x0a, value);
}

static int put_array_value(Buffer *buffer, PyObject *items, int depth)
{
    Buffer array = {NULL, 0, 0}, item = {NULL, 0, 0};
    int failed = 0;
    for (Py_ssize_t i = 0; !failed && i < PySequence_Fast_GET_SIZE(items); i++) {
        item.size = 0;
        PyObject *value = PySequence_Fast_GET_ITEM(items, i);
        Py_INCREF(value);
        failed = put_any_value(&item, value, depth + 1) < 0 || put_field(&array, 0x0a, item.data, item.size) < 0;
        Py_DECREF(value);
    }
    if (!failed)
        failed = put_field(buffer, 0x2a, array.data, array.size) < 0;
    PyMem_Free(array.data);
    PyMem_Free(item.data);
    return failed ? -1 : 0;
}

/* An AnyValue message's fields (otlp._any_value). */
static int put_any_value(Buffer *buffer, PyObject *value, int depth)
{
    if (PyUnicode_CheckExact(value))
        return put_text_value(buffer, value);
    if (PyBool_Check(value))
        return put(buffer, value == Py_True ? "\x10\x01" : "\x10\x00", 2);
    if (PyLong_CheckExact(value)) {
        unsigned long long bits = PyLong_AsUnsignedLongLongMask(value);
        if (bits == (unsigned long long)-1 && PyErr_Occurred())
            return -1;
        return put(buffer, "\x18", 1) < 0 ? -1 : put_varint(buffer, bits);
    }
    if (PyFloat_CheckExact(value)) {
        unsigned char bytes[9] = {0x21};
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(value), (char *)bytes + 1, 1) < 0)
            return -1;
        return put(buffer, bytes, 9);
    }
    if (PyBytes_CheckExact(value))
        return put_field(buffer, 0x3a, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    if ((PyList_CheckExact(value) || PyTuple_CheckExact(value)) && depth < 32)
        return put_array_value(buffer, value, depth);
    PyObject *encoded = PyObject_CallOneArg(any_value_fallback, value);
    if (encoded == NULL)
        return -1;
    if (!PyBytes_Check(encoded)) {
        Py_DECREF(encoded);
        PyErr_SetString(PyExc_TypeError, "the fallback encoder returned a non-bytes");
        return -1;
    }
    int failed = put(buffer, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return failed;
}

/* A Span's attributes (a dict) as KeyValue fields (field 9, 0x4a), appended to `out`. */
static int put_attributes(Buffer *out, PyObject *attributes)
{
    if (any_value_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_otlp() first");
        return -1;
    }
    if (!PyDict_CheckExact(attributes)) {
        PyErr_SetString(PyExc_TypeError, "attributes must be a dict");
        return -1;
    }
    Buffer any = {NULL, 0, 0};
    PyObject *key, *value;
    int result = -1;
    Py_ssize_t position = 0;
    while (PyDict_Next(attributes, &position, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "attribute keys must be str");
            goto done;
        }
        Py_ssize_t key_size;
        const char *key_utf8 = PyUnicode_AsUTF8AndSize(key, &key_size); /* strict, as key.encode() */
        if (key_utf8 == NULL)
            goto done;
        any.size = 0;
        Py_INCREF(value);
        int failed = put_any_value(&any, value, 0);
        Py_DECREF(value);
        if (failed)
            goto done;
        /* KeyValue: 1 key = string, 2 value = AnyValue; as field 9 of Span (0x4a). */
        Buffer lengths = {NULL, 0, 0};
        if (put_varint(&lengths, (unsigned long long)key_size) < 0)
            goto done;
        Py_ssize_t key_length_size = lengths.size;
        if (put_varint(&lengths, (unsigned long long)any.size) < 0) {
            PyMem_Free(lengths.data);
            goto done;
        }
        Py_ssize_t message_size = 1 + key_length_size + key_size + 1 + (lengths.size - key_length_size) + any.size;
        failed = put(out, "\x4a", 1) < 0 || put_varint(out, (unsigned long long)message_size) < 0 ||
                 put(out, "\x0a", 1) < 0 || put(out, lengths.data, key_length_size) < 0 ||
                 put(out, key_utf8, key_size) < 0 || put(out, "\x12", 1) < 0 ||
                 put(out, lengths.data + key_length_size, lengths.size - key_length_size) < 0 ||
                 put(out, any.data, any.size) < 0;
        PyMem_Free(lengths.data);
        if (failed)
            goto done;
    }
    result = 0;
done:
    PyMem_Free(any.data);
    return result;
}

static PyObject *encode_attributes(PyObject *module, PyObject *attributes)
{
    Buffer out = {NULL, 0, 0};
    PyObject *result = NULL;
    if (put_attributes(&out, attributes) == 0)
        result = PyBytes_FromStringAndSize(out.data ? out.data : "", out.size);
    PyMem_Free(out.data);
    return result;
}

/* -- OTLP span --------------------------------------------------------------------------------- */

static int put_fixed64(Buffer *buffer, unsigned char tag, unsigned long long value)
{
    unsigned char bytes[9] = {tag};
    for (int i = 0; i < 8; i++)
        bytes[1 + i] = (unsigned char)(value >> (8 * i));
    return put(buffer, bytes, 9);
}

static int put_big_endian(Buffer *buffer, unsigned long long value)
{
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(value >> (56 - 8 * i));
    return put(buffer, bytes, 8);
}

/* An unsigned 64-bit id; OverflowError (as int.to_bytes) when it does not fit. */
static int id64(PyObject *value, unsigned long long *out)
{
    if (!PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "ids must be int");
        return -1;
    }
    *out = PyLong_AsUnsignedLongLong(value);
    return (*out == (unsigned long long)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* A small enum value (span kind, status code): one byte, as otlp._SMALL[value]. */
static int put_small(Buffer *buffer, unsigned char tag, PyObject *value)
{
    long number = PyLong_AsLong(value);
    if (number == -1 && PyErr_Occurred())
        return -1;
    if (number < 0 || number > 127) {
        PyErr_SetString(PyExc_IndexError, "enum value out of range");
        return -1;
    }
    unsigned char bytes[2] = {tag, (unsigned char)number};
    return put(buffer, bytes, 2);
}

/* A span's attributes from a dict, or from any other mapping (an OpenTelemetry SDK span's) copied into one. */
static int put_span_attributes(Buffer *buffer, PyObject *attributes)
{
    if (PyDict_CheckExact(attributes))
        return put_attributes(buffer, attributes);
    PyObject *plain = PyDict_New();
    if (plain == NULL)
        return -1;
    int failed = PyDict_Merge(plain, attributes, 1) < 0 || put_attributes(buffer, plain) < 0;
    Py_DECREF(plain);
    return failed ? -1 : 0;
}

/* otlp.encode_span_py: one Span message with its field tag (0x12 of ScopeSpans). */
static PyObject *encode_span(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 9 || nargs > 11) {
        PyErr_SetString(PyExc_TypeError, "encode_span takes 9 to 11 arguments");
        return NULL;
    }
    PyObject *trace_id = args[0], *span_id = args[1], *parent_span_id = args[2], *parent_is_remote = args[3];
    PyObject *name = args[4], *kind = args[5], *start_ns = args[6], *end_ns = args[7], *attributes = args[8];
    PyObject *status_code = nargs > 9 ? args[9] : zero, *status_message = nargs > 10 ? args[10] : Py_None;
    Buffer span = {NULL, 0, 0}, status = {NULL, 0, 0}, whole = {NULL, 0, 0};
    PyObject *result = NULL, *high_part = NULL;
    unsigned long long high, low, span_bits, parent_bits = 0, start_bits, end_bits;
    unsigned int flags = 0x100;

    if (!PyLong_Check(trace_id)) {
        PyErr_SetString(PyExc_TypeError, "ids must be int");
        goto done;
    }
    high_part = PyNumber_Rshift(trace_id, sixty_four);
    if (high_part == NULL || id64(high_part, &high) < 0)
        goto done;
    low = PyLong_AsUnsignedLongLongMask(trace_id);
    if (low == (unsigned long long)-1 && PyErr_Occurred())
        goto done;
    if (id64(span_id, &span_bits) < 0 || id64(start_ns, &start_bits) < 0 || id64(end_ns, &end_bits) < 0)
        goto done;
    if (parent_span_id != Py_None) {
        if (id64(parent_span_id, &parent_bits) < 0)
            goto done;
        int remote = PyObject_IsTrue(parent_is_remote);
        if (remote < 0)
            goto done;
        if (remote)
            flags |= 0x200;
    }
    if (put(&span, "\x0a\x10", 2) < 0 || put_big_endian(&span, high) < 0 || put_big_endian(&span, low) < 0 ||
        put(&span, "\x12\x08", 2) < 0 || put_big_endian(&span, span_bits) < 0)
        goto done;
    if (parent_span_id != Py_None && (put(&span, "\x22\x08", 2) < 0 || put_big_endian(&span, parent_bits) < 0))
        goto done;
    if (put_text_field(&span, 0x2a, name) < 0 || put_small(&span, 0x30, kind) < 0 ||
        put_fixed64(&span, 0x39, start_bits) < 0 || put_fixed64(&span, 0x41, end_bits) < 0 ||
        put_span_attributes(&span, attributes) < 0)
        goto done;
    int has_status = PyObject_IsTrue(status_code);
    if (has_status < 0)
        goto done;
    if (has_status) {
        int has_message = PyObject_IsTrue(status_message);
        if (has_message < 0 || (has_message && put_text_field(&status, 0x12, status_message) < 0) ||
            put_small(&status, 0x18, status_code) < 0 || put_field(&span, 0x7a, status.data, status.size) < 0)
            goto done;
    }
    unsigned char flag_bytes[6] = {0x85, 0x01, (unsigned char)flags, (unsigned char)(flags >> 8), 0, 0};
    if (put(&span, flag_bytes, 6) < 0 || put_field(&whole, 0x12, span.data, span.size) < 0)
        goto done;
    result = PyBytes_FromStringAndSize(whole.data, whole.size);
done:
    Py_XDECREF(high_part);
    PyMem_Free(span.data);
    PyMem_Free(status.data);
    PyMem_Free(whole.data);
    return result;
}

static PyObject *configure_otlp(PyObject *module, PyObject *any_value)
{
    Py_INCREF(any_value);
    Py_XSETREF(any_value_fallback, any_value);
    Py_RETURN_NONE;
}

/* -- the usual call's span attributes (calls.record_attributes_py) ------------------------------ */

/* What `record_attributes` reads, for the two operations whose requests and responses it knows (kinds):
 * RECORD_OPENAI_CHAT as integrations/openai.ChatCompletions, RECORD_ANTHROPIC as integrations/anthropic.MessagesCreate.
 * Anything it does not read exactly as that Python code would (a request value of another shape, an error on the way)
 * makes it decline (return None without an error): the Python code then builds the attributes. */
#define RECORD_OPENAI_CHAT 1
#define RECORD_ANTHROPIC 2
#define DECLINE 1 /* a record helper's "not the usual shape": no error set */

static PyObject *non_semantic = NULL; /* calls.NON_SEMANTIC_FIELDS */
static PyObject *omitted_marker = NULL; /* fingerprints.OMITTED */
enum {
    K_STREAM, K_MODEL, K_MAX_COMPLETION_TOKENS, K_MAX_TOKENS, K_TEMPERATURE, K_TOP_P, K_TOP_K, K_USER,
    K_SAFETY_IDENTIFIER, K_METADATA, K_USER_ID, K_MESSAGES, K_ROLE, K_SYSTEM, K_DEVELOPER, K_TOOLS, K_FUNCTIONS,
    K_FIRST, A_STREAM, A_MODEL, A_MAX_TOKENS, A_TEMPERATURE, A_TOP_P, A_TOP_K, A_USER, A_PREFIX_HASH, A_REQUEST_HASH,
    A_RESPONSE_ID, A_RESPONSE_MODEL, A_FINISH_REASONS, A_INPUT, A_CACHE_READ, A_CACHE_CREATION, A_OUTPUT, A_REASONING,
    NAMES
};
static const char *name_texts[NAMES] = {
    "stream", "model", "max_completion_tokens", "max_tokens", "temperature", "top_p", "top_k", "user",
    "safety_identifier", "metadata", "user_id", "messages", "role", "system", "developer", "tools", "functions",
    "first", "gen_ai.request.stream", "gen_ai.request.model", "gen_ai.request.max_tokens", "gen_ai.request.temperature",
    "gen_ai.request.top_p", "gen_ai.request.top_k", "user.id", "observatory.prompt_prefix_hash", "observatory.request_hash",
    "gen_ai.response.id", "gen_ai.response.model", "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.reasoning.output_tokens",
};
static PyObject *names[NAMES];

/* request.get(name): a borrowed reference, NULL for a missing key (-1 on error). */
static int get(PyObject *request, int name, PyObject **out)
{
    *out = PyDict_GetItemWithError(request, names[name]);
    return *out == NULL && PyErr_Occurred() ? -1 : 0;
}

/* `a or b` of two request values (borrowed, NULL meaning None). */
static int either(PyObject *request, int first, int second, PyObject **out)
{
    if (get(request, first, out) < 0)
        return -1;
    if (*out != NULL) {
        int truth = PyObject_IsTrue(*out);
        if (truth < 0)
            return -1;
        if (truth)
            return 0;
    }
    return get(request, second, out);
}

static int set_new(PyObject *attributes, int name, PyObject *value)
{
    if (value == NULL)
        return -1;
    int failed = PyDict_SetItem(attributes, names[name], value);
    Py_DECREF(value);
    return failed;
}

/* `if isinstance(value, int | float) and not isinstance(value, bool): attributes[name] = float(value)` */
static int set_float(PyObject *attributes, int name, PyObject *value)
{
    if (value == NULL || PyBool_Check(value) || !(PyLong_Check(value) || PyFloat_Check(value)))
        return 0;
    return set_new(attributes, name, PyNumber_Float(value));
}

/* `if value: attributes[name] = value` */
static int set_if_true(PyObject *attributes, int name, PyObject *value)
{
    if (value == NULL)
        return 0;
    int truth = PyObject_IsTrue(value);
    return truth <= 0 ? truth : PyDict_SetItem(attributes, names[name], value);
}

static int set_if_given(PyObject *attributes, int name, PyObject *value)
{
    return value == NULL || value == Py_None ? 0 : PyDict_SetItem(attributes, names[name], value);
}

/* The request's attributes after the shared ones: request attributes, then user.id (calls.request_attributes). */
static int record_request(int kind, PyObject *request, PyObject *attributes)
{
    PyObject *value;
    if (kind == RECORD_OPENAI_CHAT) {
        if (either(request, K_MAX_COMPLETION_TOKENS, K_MAX_TOKENS, &value) < 0)
            return -1;
    }
    else if (get(request, K_MAX_TOKENS, &value) < 0)
        return -1;
    if (value != NULL && PyLong_Check(value) && PyDict_SetItem(attributes, names[A_MAX_TOKENS], value) < 0)
        return -1;
    if (get(request, K_TEMPERATURE, &value) < 0 || set_float(attributes, A_TEMPERATURE, value) < 0)
        return -1;
    if (get(request, K_TOP_P, &value) < 0 || set_float(attributes, A_TOP_P, value) < 0)
        return -1;
    PyObject *user;
    if (kind == RECORD_ANTHROPIC) {
        if (get(request, K_TOP_K, &value) < 0)
            return -1;
        if (value != NULL && PyLong_Check(value) && set_new(attributes, A_TOP_K, PyNumber_Float(value)) < 0)
            return -1;
        PyObject *metadata;
        if (get(request, K_METADATA, &metadata) < 0)
            return -1;
        if (metadata == NULL || metadata == Py_None)
            user = NULL;
        else if (!PyDict_CheckExact(metadata))
            return DECLINE;
        else if (get(metadata, K_USER_ID, &user) < 0)
            return -1;
    }
    else if (either(request, K_USER, K_SAFETY_IDENTIFIER, &user) < 0)
        return -1;
    if (user == NULL || !PyUnicode_Check(user))
        return 0;
    return set_if_true(attributes, A_USER, user);
}

/* The operation's prompt_prefix(request): a new reference (None when the request has no messages list). */
static int record_prefix(int kind, PyObject *request, PyObject **out)
{
    PyObject *messages, *value;
    *out = NULL;
    if (get(request, K_MESSAGES, &messages) < 0)
        return -1;
    if (messages == NULL || !(PyList_Check(messages) || PyTuple_Check(messages))) {
        *out = Py_NewRef(Py_None);
        return 0;
    }
    if (!PyList_CheckExact(messages) && !PyTuple_CheckExact(messages))
        return DECLINE;
    PyObject *fast = PySequence_Fast(messages, "messages");
    if (fast == NULL)
        return -1;
    Py_ssize_t size = PySequence_Fast_GET_SIZE(fast), count = 0;
    PyObject *prefix = PyDict_New(), *system = NULL, *first = Py_None;
    int result = -1;
    if (prefix == NULL)
        goto done;
    if (kind == RECORD_OPENAI_CHAT) {
        for (; count < size; count++) { /* the leading run of system and developer messages */
            PyObject *item = PySequence_Fast_GET_ITEM(fast, count), *role;
            if (!PyDict_CheckExact(item)) {
                result = DECLINE;
                goto done;
            }
            if (get(item, K_ROLE, &role) < 0)
                goto done;
            if (role == NULL)
                break;
            Py_INCREF(role);
            int is_system = PyObject_RichCompareBool(role, names[K_SYSTEM], Py_EQ);
            int is_developer = is_system == 0 ? PyObject_RichCompareBool(role, names[K_DEVELOPER], Py_EQ) : 0;
            Py_DECREF(role);
            if (is_system < 0 || is_developer < 0)
                goto done;
            if (!is_system && !is_developer)
                break;
        }
        system = PyList_New(count);
        if (system == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < count; i++)
            PyList_SET_ITEM(system, i, Py_NewRef(PySequence_Fast_GET_ITEM(fast, i)));
        if (count < size)
            first = PySequence_Fast_GET_ITEM(fast, count);
        if (either(request, K_TOOLS, K_FUNCTIONS, &value) < 0)
            goto done;
    }
    else {
        if (get(request, K_SYSTEM, &value) < 0)
            goto done;
        system = Py_NewRef(value != NULL ? value : Py_None);
        if (size > 0)
            first = PySequence_Fast_GET_ITEM(fast, 0);
        if (get(request, K_TOOLS, &value) < 0)
            goto done;
    }
    if (PyDict_SetItem(prefix, names[K_SYSTEM], system) < 0 ||
        PyDict_SetItem(prefix, names[K_TOOLS], value != NULL ? value : Py_None) < 0 ||
        PyDict_SetItem(prefix, names[K_FIRST], first) < 0)
        goto done;
    *out = Py_NewRef(prefix);
    result = 0;
done:
    Py_DECREF(fast);
    Py_XDECREF(prefix);
    Py_XDECREF(system);
    return result;
}

/* calls._semantic(request): a new reference. */
static PyObject *semantic(PyObject *request)
{
    PyObject *copy = NULL, *iterator = PyObject_GetIter(non_semantic), *field;
    if (iterator == NULL)
        return NULL;
    while ((field = PyIter_Next(iterator)) != NULL) {
        int present = PyDict_Contains(copy != NULL ? copy : request, field);
        if (present > 0 && copy == NULL && (copy = PyDict_Copy(request)) == NULL)
            present = -1;
        if (present > 0 && PyDict_DelItem(copy, field) < 0)
            present = -1;
        Py_DECREF(field);
        if (present < 0) {
            Py_DECREF(iterator);
            Py_XDECREF(copy);
            return NULL;
        }
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred()) {
        Py_XDECREF(copy);
        return NULL;
    }
    return copy != NULL ? copy : Py_NewRef(request);
}

/* The response's attributes (Operation.response_values, then calls.write_response). */
static int record_response(int kind, PyObject *values, PyObject *attributes)
{
    Py_ssize_t expected = kind == RECORD_OPENAI_CHAT ? 9 : 7;
    if (PyTuple_GET_SIZE(values) != expected)
        return DECLINE;
    PyObject *const *v = &PyTuple_GET_ITEM(values, 0);
    if (set_if_true(attributes, A_RESPONSE_ID, v[0]) < 0 || set_if_true(attributes, A_RESPONSE_MODEL, v[1]) < 0)
        return -1;
    PyObject *reasons = PyList_New(0);
    if (reasons == NULL)
        return -1;
    int truth = PyObject_IsTrue(v[2]);
    if (truth < 0)
        goto error;
    if (truth && kind == RECORD_ANTHROPIC) {
        if (PyList_Append(reasons, v[2]) < 0)
            goto error;
    }
    else if (truth) { /* [reason for reason in finish_reasons or () if reason] */
        if (!PyList_Check(v[2]) && !PyTuple_Check(v[2])) {
            Py_DECREF(reasons);
            return DECLINE;
        }
        PyObject *fast = PySequence_Fast(v[2], "finish reasons");
        if (fast == NULL)
            goto error;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
            PyObject *reason = PySequence_Fast_GET_ITEM(fast, i);
            int kept = PyObject_IsTrue(reason);
            if (kept < 0 || (kept && PyList_Append(reasons, reason) < 0)) {
                Py_DECREF(fast);
                goto error;
            }
        }
        Py_DECREF(fast);
    }
    if (PyList_GET_SIZE(reasons) > 0 && set_new(attributes, A_FINISH_REASONS, PyList_AsTuple(reasons)) < 0)
        goto error;
    Py_CLEAR(reasons);
    if (kind == RECORD_OPENAI_CHAT) {
        return set_if_given(attributes, A_INPUT, v[3]) < 0 || set_if_given(attributes, A_CACHE_READ, v[4]) < 0 ||
                       set_if_given(attributes, A_CACHE_CREATION, v[5]) < 0 || set_if_given(attributes, A_OUTPUT, v[6]) < 0 ||
                       set_if_given(attributes, A_REASONING, v[7]) < 0
                   ? -1
                   : 0;
    }
    if (v[3] == Py_None && v[4] == Py_None && v[5] == Py_None && v[6] == Py_None)
        return 0;
    /* anthropic._usage: the input total counts the cached tokens too */
    PyObject *total = NULL;
    for (int i = 3; i <= 5; i++) {
        if (!PyLong_Check(v[i]))
            continue;
        PyObject *sum = PyNumber_Add(total != NULL ? total : zero, v[i]);
        Py_XDECREF(total);
        if (sum == NULL)
            return -1;
        total = sum;
    }
    if (total != NULL && set_new(attributes, A_INPUT, total) < 0)
        return -1;
    return set_if_given(attributes, A_CACHE_READ, v[4]) < 0 || set_if_given(attributes, A_CACHE_CREATION, v[5]) < 0 ||
                   set_if_given(attributes, A_OUTPUT, v[6]) < 0
               ? -1
               : 0;
error:
    Py_XDECREF(reasons);
    return -1;
}

/* record_attributes(kind, fixed, request, values, head, known, kept, attribution) -> the span attributes of the
 * usual call's record, or None when the Python code is to build them (see RECORD_OPENAI_CHAT). `fixed`: the
 * attributes shared by the operation's calls to one server (copied); `attribution`: (key, value) pairs. */
static PyObject *record_attributes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyLong_Check(args[0]) || !PyDict_CheckExact(args[1]) || !PyUnicode_Check(args[4]) ||
        !PyDict_CheckExact(args[5]) || !PyTuple_CheckExact(args[7])) {
        PyErr_SetString(PyExc_TypeError, "record_attributes(kind, fixed: dict, request, values, head: str, known: dict, "
                                         "kept: int, attribution: tuple)");
        return NULL;
    }
    if (non_semantic == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_records() first");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    PyObject *request = args[2], *values = args[3], *attribution = args[7];
    Py_ssize_t kept = PyLong_AsSsize_t(args[6]);
    if (kept == -1 && PyErr_Occurred())
        return NULL;
    if ((kind != RECORD_OPENAI_CHAT && kind != RECORD_ANTHROPIC) || !PyDict_CheckExact(request) || !PyTuple_CheckExact(values))
        Py_RETURN_NONE;
    PyObject *key, *value, *prefix = NULL, *wanted = NULL, *prefix_hash = NULL, *request_hash = NULL;
    Py_ssize_t position = 0;
    while (PyDict_Next(request, &position, &key, &value))
        if (value == omitted_marker) /* a client's "not given": calls._without_omitted */
            Py_RETURN_NONE;
    PyObject *attributes = PyDict_Copy(args[1]);
    if (attributes == NULL)
        return NULL;
    int failed;
    if (get(request, K_STREAM, &value) < 0 ||
        PyDict_SetItem(attributes, names[A_STREAM], value == Py_True ? Py_True : Py_False) < 0 ||
        get(request, K_MODEL, &value) < 0 ||
        (value != NULL && PyUnicode_Check(value) && PyDict_SetItem(attributes, names[A_MODEL], value) < 0))
        goto error;
    if ((failed = record_request((int)kind, request, attributes)) != 0 ||
        (failed = record_prefix((int)kind, request, &prefix)) != 0)
        goto stop;
    wanted = semantic(request);
    if (wanted == NULL || digests(prefix, wanted, args[4], args[5], kept, &prefix_hash, &request_hash) < 0)
        goto error;
    if (set_if_given(attributes, A_PREFIX_HASH, prefix_hash) < 0 || set_if_given(attributes, A_REQUEST_HASH, request_hash) < 0)
        goto error;
    if ((failed = record_response((int)kind, values, attributes)) != 0)
        goto stop;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(attribution); i++) {
        PyObject *pair = PyTuple_GET_ITEM(attribution, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            failed = DECLINE;
            goto stop;
        }
        if (PyDict_SetItem(attributes, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
            goto error;
    }
    Py_DECREF(prefix);
    Py_DECREF(wanted);
    Py_DECREF(prefix_hash);
    Py_DECREF(request_hash);
    return attributes;
stop:
    if (failed == DECLINE) {
        Py_XDECREF(prefix);
        Py_XDECREF(wanted);
        Py_XDECREF(prefix_hash);
        Py_XDECREF(request_hash);
        Py_DECREF(attributes);
        Py_RETURN_NONE;
    }
error: /* the Python code meets the same error and deals with it (a span without its hashes, a logged failure) */
    PyErr_Clear();
    Py_XDECREF(prefix);
    Py_XDECREF(wanted);
    Py_XDECREF(prefix_hash);
    Py_XDECREF(request_hash);
    Py_DECREF(attributes);
    Py_RETURN_NONE;
}

static PyObject *configure_records(PyObject *module, PyObject *args)
{
    PyObject *fields, *marker;
    if (!PyArg_ParseTuple(args, "OO", &fields, &marker))
        return NULL;
    for (int i = 0; i < NAMES; i++)
        if (names[i] == NULL && (names[i] = PyUnicode_InternFromString(name_texts[i])) == NULL)
            return NULL;
    Py_INCREF(fields);
    Py_XSETREF(non_semantic, fields);
    Py_INCREF(marker);
    Py_XSETREF(omitted_marker, marker);
    Py_RETURN_NONE;
}

/* -- the observed method of a wrapped client (patching.wrap_method) --------------------------------------------- */

#include <stddef.h>
#include <time.h>

/* Observed(original, operation, paths, client, general, failed, record_failed): what patching.wrap_method's
 * `observed` does for the usual call of a wrapped client's method (synchronous, not streamed, no content captured):
 * snapshot the request, call the original, pluck the response's values and submit one tuple record to the active
 * pipeline. Every other call, and any failure before the original is called, goes to `general` (the Python
 * `observed`); a failed original call goes to `failed(start_ns, began, request, attribution, context, error)`
 * before its exception is raised again; a failure to record goes to `record_failed(error)` (logged, never raised). */
typedef struct {
    PyObject_HEAD
    PyObject *original, *operation, *paths, *client, *general, *failed, *record_failed, *dict;
    vectorcallfunc vectorcall;
} Observed;

static PyObject *observe_globals = NULL; /* patching's module dict: `pipeline`, `snapshot` looked up per call */
static PyObject *attribution_var = NULL; /* attribution._current */
static PyObject *sys_modules = NULL;     /* sys.modules */
static PyObject *s_pipeline, *s_current, *s_snapshot, *s_settings, *s_capture_content, *s_submit, *s_stream,
    *s_otel_context, *s_get_current;
static PyObject *c_snapshot = NULL; /* this module's own snapshot function */

static PyObject *now_ns(clockid_t clock)
{
    struct timespec now;
    if (clock_gettime(clock, &now) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    return PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + now.tv_nsec);
}

static long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* The active pipeline (a new reference), NULL when there is none (or on error, with the error set). */
static PyObject *active_pipeline(void)
{
    PyObject *module = PyDict_GetItemWithError(observe_globals, s_pipeline);
    if (module == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "patching.pipeline is missing");
        return NULL;
    }
    PyObject *active = PyObject_GetAttr(module, s_current);
    if (active == Py_None)
        Py_CLEAR(active);
    return active;
}

/* 1 when the call must go the general way: stream=True passed, or content captured. */
static int general_call(PyObject *active, PyObject *const *args, size_t nargs, PyObject *kwnames)
{
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            int is_stream = PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, i), s_stream);
            if (is_stream == -1 && PyErr_Occurred())
                return -1;
            if (is_stream == 0 && args[nargs + i] == Py_True)
                return 1;
        }
    }
    PyObject *settings = PyObject_GetAttr(active, s_settings);
    if (settings == NULL)
        return -1;
    PyObject *capture = PyObject_GetAttr(settings, s_capture_content);
    Py_DECREF(settings);
    if (capture == NULL)
        return -1;
    int truth = PyObject_IsTrue(capture);
    Py_DECREF(capture);
    return truth;
}

static PyObject *keyword_dict(PyObject *const *args, size_t nargs, PyObject *kwnames)
{
    PyObject *kwargs = PyDict_New();
    if (kwargs == NULL || kwnames == NULL)
        return kwargs;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++)
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            Py_DECREF(kwargs);
            return NULL;
        }
    return kwargs;
}

static PyObject *take_snapshot(PyObject *kwargs)
{
    PyObject *function = PyDict_GetItemWithError(observe_globals, s_snapshot);
    if (function == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "patching.snapshot is missing");
        return NULL;
    }
    if (function == c_snapshot)
        return snapshot_value(kwargs, 0);
    return PyObject_CallOneArg(function, kwargs); /* replaced (tests): call what is there */
}

static PyObject *app_context(void)
{
    PyObject *otel = PyDict_GetItemWithError(sys_modules, s_otel_context);
    if (otel == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return PyObject_CallMethodNoArgs(otel, s_get_current);
}

/* Hand the current exception to `handler` (never raising from it) and set it again. */
static void report_failure(PyObject *handler, PyObject *const *before, Py_ssize_t count)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    PyObject *arguments[8];
    for (Py_ssize_t i = 0; i < count; i++)
        arguments[i] = before[i];
    arguments[count] = value != NULL ? value : Py_None;
    PyObject *outcome = PyObject_Vectorcall(handler, arguments, count + 1, NULL);
    if (outcome == NULL)
        PyErr_Clear();
    Py_XDECREF(outcome);
    PyErr_Restore(type, value, traceback);
}

static PyObject *observed_call(Observed *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    size_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *active = active_pipeline();
    if (active == NULL) {
        if (PyErr_Occurred())
            return NULL;
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    }
    int general = general_call(active, args, nargs, kwnames);
    if (general != 0) {
        Py_DECREF(active);
        if (general < 0)
            PyErr_Clear();
        return PyObject_Vectorcall(self->general, args, nargsf, kwnames);
    }
    PyObject *kwargs = NULL, *start = NULL, *request = NULL, *attribution = NULL, *context = NULL, *result = NULL;
    if ((kwargs = keyword_dict(args, nargs, kwnames)) == NULL || (start = now_ns(CLOCK_REALTIME)) == NULL ||
        (request = take_snapshot(kwargs)) == NULL || PyContextVar_Get(attribution_var, NULL, &attribution) < 0 ||
        attribution == NULL || (context = app_context()) == NULL) {
        /* the general way logs what failed, and calls the original all the same */
        PyErr_Clear();
        result = PyObject_Vectorcall(self->general, args, nargsf, kwnames);
        goto done;
    }
    long long began = monotonic_ns();
    result = PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    long long ended = monotonic_ns();
    if (result == NULL) {
        PyObject *began_object = PyLong_FromLongLong(began);
        if (began_object == NULL) {
            PyErr_Clear(); /* the call's own exception is lost only if memory is: keep a MemoryError */
            PyErr_NoMemory();
            goto done;
        }
        PyObject *before[5] = {start, began_object, request, attribution, context};
        report_failure(self->failed, before, 5);
        Py_DECREF(began_object);
        goto done;
    }
    PyObject *values = NULL, *record = NULL, *duration = PyLong_FromLongLong(ended - began);
    if (duration != NULL) {
        PyObject *pluck_args[2] = {result, self->paths};
        values = pluck(NULL, pluck_args, 2);
    }
    if (values != NULL)
        record = PyTuple_Pack(8, self->operation, start, duration, request, attribution, context, self->client, values);
    if (record != NULL)
        PyObject_GC_UnTrack(record); /* see the GC note above snapshot_value */
    PyObject *submitted = record == NULL ? NULL : PyObject_CallMethodOneArg(active, s_submit, record);
    Py_XDECREF(duration);
    Py_XDECREF(values);
    Py_XDECREF(record);
    if (submitted != NULL) {
        Py_DECREF(submitted);
    }
    else if (PyErr_ExceptionMatches(PyExc_Exception)) { /* telemetry must never break the app */
        report_failure(self->record_failed, NULL, 0);
        PyErr_Clear();
    }
    else { /* KeyboardInterrupt, SystemExit ...: as Python would */
        Py_CLEAR(result);
    }
done:
    Py_DECREF(active);
    Py_XDECREF(kwargs);
    Py_XDECREF(start);
    Py_XDECREF(request);
    Py_XDECREF(attribution);
    Py_XDECREF(context);
    return result;
}

static PyObject *observed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *original, *operation, *paths, *client, *general, *failed, *record_failed;
    if (!PyArg_ParseTuple(args, "OOO!OOOO:Observed", &original, &operation, &PyTuple_Type, &paths, &client, &general,
                          &failed, &record_failed))
        return NULL;
    if (observe_globals == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure_observed() first");
        return NULL;
    }
    Observed *self = (Observed *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->original = Py_NewRef(original);
    self->operation = Py_NewRef(operation);
    self->paths = Py_NewRef(paths);
    self->client = Py_NewRef(client);
    self->general = Py_NewRef(general);
    self->failed = Py_NewRef(failed);
    self->record_failed = Py_NewRef(record_failed);
    self->vectorcall = (vectorcallfunc)observed_call;
    return (PyObject *)self;
}

static int observed_traverse(Observed *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->operation);
    Py_VISIT(self->paths);
    Py_VISIT(self->client);
    Py_VISIT(self->general);
    Py_VISIT(self->failed);
    Py_VISIT(self->record_failed);
    Py_VISIT(self->dict);
    return 0;
}

static int observed_clear(Observed *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->operation);
    Py_CLEAR(self->paths);
    Py_CLEAR(self->client);
    Py_CLEAR(self->general);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->record_failed);
    Py_CLEAR(self->dict);
    return 0;
}

static void observed_dealloc(Observed *self)
{
    PyObject_GC_UnTrack(self);
    observed_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyGetSetDef observed_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject ObservedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "observatory_sdk._speedups.Observed",
    .tp_basicsize = sizeof(Observed),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The observed method of a wrapped client (patching.wrap_method).",
    .tp_new = observed_new,
    .tp_traverse = (traverseproc)observed_traverse,
    .tp_clear = (inquiry)observed_clear,
    .tp_dealloc = (destructor)observed_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Observed, vectorcall),
    .tp_dictoffset = offsetof(Observed, dict),
    .tp_getset = observed_getset,
};

/* configure_observed(patching module dict, attribution context variable) */
static PyObject *configure_observed(PyObject *module, PyObject *args)
{
    PyObject *globals, *variable;
    if (!PyArg_ParseTuple(args, "O!O", &PyDict_Type, &globals, &variable))
        return NULL;
    if (!PyContextVar_CheckExact(variable)) {
        PyErr_SetString(PyExc_TypeError, "expected a ContextVar");
        return NULL;
    }
    const char *texts[] = {"pipeline", "current", "snapshot", "settings", "capture_content", "submit", "stream",
                           "opentelemetry.context", "get_current"};
    PyObject **slots[] = {&s_pipeline, &s_current, &s_snapshot, &s_settings, &s_capture_content, &s_submit, &s_stream,
                          &s_otel_context, &s_get_current};
    for (int i = 0; i < 9; i++)
        if (*slots[i] == NULL && (*slots[i] = PyUnicode_InternFromString(texts[i])) == NULL)
            return NULL;
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    PyObject *own_snapshot = PyObject_GetAttrString(module, "snapshot");
    if (modules == NULL || own_snapshot == NULL) {
        Py_XDECREF(own_snapshot);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "sys.modules is missing");
        return NULL;
    }
    Py_XSETREF(c_snapshot, own_snapshot);
    Py_XSETREF(sys_modules, Py_NewRef(modules));
    Py_XSETREF(observe_globals, Py_NewRef(globals));
    Py_XSETREF(attribution_var, Py_NewRef(variable));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"snapshot", (PyCFunction)(void (*)(void))snapshot, METH_FASTCALL,
     "snapshot(value, depth=0) -> a copy of a request value (fingerprints.snapshot)"},
    {"configure_snapshot", configure_snapshot, METH_VARARGS, "configure_snapshot(fallback, unreadable)"},
    {"pluck", (PyCFunction)(void (*)(void))pluck, METH_FASTCALL,
     "pluck(response, paths) -> the value at the end of each attribute path (calls.pluck_py)"},
    {"encode_attributes", encode_attributes, METH_O,
     "encode_attributes(attributes) -> a Span's attributes as KeyValue fields (otlp.encode_attributes)"},
    {"configure_otlp", configure_otlp, METH_O, "configure_otlp(any_value_fallback)"},
    {"encode_span", (PyCFunction)(void (*)(void))encode_span, METH_FASTCALL,
     "encode_span(trace_id, span_id, parent_span_id, parent_is_remote, name, kind, start_ns, end_ns, attributes, "
     "status_code=0, status_message=None) -> one Span message with its field tag (otlp.encode_span_py)"},
    {"text", (PyCFunction)(void (*)(void))canonical_text, METH_FASTCALL,
     "text(value, depth, seen) -> the canonical text of value (fingerprints.py)"},
    {"configure", configure, METH_VARARGS, "configure(fallback, not_hashable_error)"},
    {"request_digests", (PyCFunction)(void (*)(void))request_digests, METH_FASTCALL,
     "request_digests(prefix, request, head, known, kept) -> (prefix hash, request hash) (calls.request_hashes_py)"},
    {"configure_digest", configure_digest, METH_O, "configure_digest(hashlib.sha256)"},
    {"record_attributes", (PyCFunction)(void (*)(void))record_attributes, METH_FASTCALL,
     "record_attributes(kind, fixed, request, values, head, known, kept, attribution) -> the attributes of the usual "
     "call's record, or None (calls.record_attributes_py)"},
    {"configure_records", configure_records, METH_VARARGS, "configure_records(non_semantic_fields, omitted)"},
    {"configure_observed", configure_observed, METH_VARARGS, "configure_observed(patching_globals, attribution_var)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_speedups", "The SDK's canonical request text and OTLP attribute encoding, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    empty = PyUnicode_FromString("");
    text_none = PyUnicode_FromString("n");
    text_true = PyUnicode_FromString("t");
    text_false = PyUnicode_FromString("f");
    sixty_four = PyLong_FromLong(64);
    zero = PyLong_FromLong(0);
    hexdigest = PyUnicode_InternFromString("hexdigest");
    if (hexdigest == NULL)
        return NULL;
    if (sixty_four == NULL || zero == NULL || empty == NULL || text_none == NULL || text_true == NULL || text_false == NULL)
        return NULL;
    if (PyType_Ready(&ObservedType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Observed", (PyObject *)&ObservedType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
