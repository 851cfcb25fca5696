/* The canonical request text of fingerprints.py, written in C: the same text, character for
 * character, for the types requests are made of (dict, list, tuple, str, int, float, bool, None);
 * any other value is handed back to the Python writer (`fallback`), which is the reference.
 * Optional: when this module cannot be built, fingerprints.py writes the text in Python. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define WHOLE_CHARS 4096
#define EDGE_CHARS 1024
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
    if (Py_EnterRecursiveCall(" while writing a canonical request text"))
        return NULL;
    PyObject *parts = PyList_New(0);
    PyObject *result = NULL;
    if (parts != NULL && write_value(parts, args[0], depth, seen) == 0)
        result = PyList_GET_SIZE(parts) == 1 ? Py_NewRef(PyList_GET_ITEM(parts, 0)) : PyUnicode_Join(empty, parts);
    Py_XDECREF(parts);
    Py_LeaveRecursiveCall();
    return result;
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

static PyMethodDef methods[] = {
    {"text", (PyCFunction)(void (*)(void))canonical_text, METH_FASTCALL,
     "text(value, depth, seen) -> the canonical text of value (fingerprints.py)"},
    {"configure", configure, METH_VARARGS, "configure(fallback, not_hashable_error)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_speedups", "The canonical request text of fingerprints.py, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    empty = PyUnicode_FromString("");
    text_none = PyUnicode_FromString("n");
    text_true = PyUnicode_FromString("t");
    text_false = PyUnicode_FromString("f");
    if (empty == NULL || text_none == NULL || text_true == NULL || text_false == NULL)
        return NULL;
    return PyModule_Create(&module_definition);
}
