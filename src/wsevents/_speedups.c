/* Optional compiled helpers for wsevents. The pure-Python code in
 * protocol/_mask.py and protocol/reader.py does the same jobs and is used when
 * this module is absent.
 *
 * mask(data, key) -> bytes: XOR data with the 4-byte key repeated (RFC 6455 5.3).
 * scan(buf, pos, mask_bit, limit) -> (pending, new_pos): parse the run of whole,
 *     plain data frames at buf[pos:] into the events the pure parser gives for them
 *     (see scan's comment).
 * Collector: a binary message gathered whole, unmasked straight into its final buffer (see its
 *     section at the end).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* XOR n bytes of src with the key repeated from its first byte. Every step is a multiple of
 * 4 bytes, so the key lines up the same way in each loop. GCC and clang lower the vector type
 * to SSE2, NEON or plain words as the target allows, whatever the optimisation flags; other
 * compilers take the 8-byte loop. */
static void
xor_mask(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char *key)
{
    Py_ssize_t i = 0;
    uint32_t k32;
    uint64_t k64;

    memcpy(&k32, key, 4);
    k64 = ((uint64_t)k32 << 32) | k32;
#if defined(__GNUC__) || defined(__clang__)
    {
        typedef unsigned char v16 __attribute__((vector_size(16)));
        v16 kv, a, b;
        memcpy(&kv, &k64, 8);
        memcpy((unsigned char *)&kv + 8, &k64, 8);
        for (; i + 32 <= n; i += 32) {
            memcpy(&a, src + i, 16);
            memcpy(&b, src + i + 16, 16);
            a ^= kv;
            b ^= kv;
            memcpy(dst + i, &a, 16);
            memcpy(dst + i + 16, &b, 16);
        }
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, src + i, 8);
        chunk ^= k64;
        memcpy(dst + i, &chunk, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* Past this many bytes, unmasking lets other threads run. */
#define NOGIL_MASK 16384

static PyObject *
speedups_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result;
    unsigned char *dst;
    Py_ssize_t n;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "mask() takes exactly 2 arguments (data, key)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "the mask key must be 4 bytes");
        return NULL;
    }
    n = data.len;
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        return NULL;
    }
    dst = (unsigned char *)PyBytes_AS_STRING(result);
    if (n >= NOGIL_MASK) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(dst, (const unsigned char *)data.buf, n, (const unsigned char *)key.buf);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(dst, (const unsigned char *)data.buf, n, (const unsigned char *)key.buf);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return result;
}

/* The bounds of one scan: a pull never turns a big read into unbounded events at once. A
 * first frame larger than SCAN_MAX_PAYLOAD is still taken (the pure parser unmasks it in one
 * pull too). */
#define SCAN_MAX_FRAMES 64
#define SCAN_MAX_PAYLOAD 65536
/* Text payloads up to this size are unmasked on the stack before they are decoded. */
#define SCAN_STACK 4096

/* The event kinds of protocol/events.py. */
#define KIND_TEXT 1
#define KIND_BINARY 2
#define KIND_BINARY_START 3

static PyObject *binary_start_event; /* (BINARY_START,), shared */

/* Append event and then n to out (the reader pops them in reverse). -1 on error (event is
 * consumed either way). */
static int
append_pair(PyObject *out, PyObject *event, Py_ssize_t n)
{
    PyObject *size;
    int rc;

    if (event == NULL)
        return -1;
    rc = PyList_Append(out, event);
    Py_DECREF(event);
    if (rc < 0)
        return -1;
    size = PyLong_FromSsize_t(n);
    if (size == NULL)
        return -1;
    rc = PyList_Append(out, size);
    Py_DECREF(size);
    return rc;
}

/* A text frame's event, or NULL with no exception set when its payload is not valid UTF-8. */
static PyObject *
text_event(const unsigned char *payload, Py_ssize_t n, const unsigned char *key)
{
    unsigned char stack[SCAN_STACK];
    unsigned char *tmp = stack;
    PyObject *text, *event;

    if (key != NULL) {
        if (n > SCAN_STACK) {
            tmp = PyMem_Malloc((size_t)n);
            if (tmp == NULL)
                return PyErr_NoMemory();
        }
        xor_mask(tmp, payload, n, key);
        payload = tmp;
    }
    text = PyUnicode_DecodeUTF8((const char *)payload, n, "strict");
    if (tmp != stack)
        PyMem_Free(tmp);
    if (text == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            PyErr_Clear();
        return NULL;
    }
    event = Py_BuildValue("(iN)", KIND_TEXT, text);
    return event;
}

/* A binary frame's payload, unmasked. */
static PyObject *
binary_payload(const unsigned char *payload, Py_ssize_t n, const unsigned char *key)
{
    PyObject *data;

    if (key == NULL)
        return PyBytes_FromStringAndSize((const char *)payload, n);
    data = PyBytes_FromStringAndSize(NULL, n);
    if (data == NULL)
        return NULL;
    if (n >= NOGIL_MASK) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask((unsigned char *)PyBytes_AS_STRING(data), payload, n, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask((unsigned char *)PyBytes_AS_STRING(data), payload, n, key);
    }
    return data;
}

/* The header of a plain whole data frame at p (avail bytes there): its header length and
 * payload length, or 0 when the frame is anything else or not whole yet. A length in more bytes
 * than it needs (valid, but rare) is left to the pure parser too, so that the header's length
 * follows from the payload's (the reader's `buffered` counts on it). */
static Py_ssize_t
plain_header(const unsigned char *p, Py_ssize_t avail, int mask_bit, Py_ssize_t limit, Py_ssize_t *n_out)
{
    Py_ssize_t hl = 2;
    uint64_t n;
    int i;

    if (avail < 2 || (p[0] != 0x80 + KIND_TEXT && p[0] != 0x80 + KIND_BINARY) || (p[1] & 0x80) != mask_bit)
        return 0;
    n = p[1] & 0x7F;
    if (n == 126) {
        if (avail < 4)
            return 0;
        n = ((uint64_t)p[2] << 8) | p[3];
        hl = 4;
        if (n < 126)
            return 0;
    }
    else if (n == 127) {
        if (avail < 10)
            return 0;
        n = 0;
        for (i = 2; i < 10; i++)
            n = (n << 8) | p[i];
        hl = 10;
        if (n < 65536)
            return 0;
    }
    if (mask_bit)
        hl += 4;
    /* A length past what is here (including a 64-bit one with its top bit set, which the pure
     * parser fails) or past the bound: the pure parser's job. */
    if (avail < hl || n > (uint64_t)(avail - hl) || (limit >= 0 && n > (uint64_t)limit))
        return 0;
    *n_out = (Py_ssize_t)n;
    return hl;
}

/* The bound of scan's limit argument: -1 for none (None, or past any buffer), -2 when no payload
 * is within it (a negative bound: the pure parser fails every message); -1 with an exception
 * set when it is not an int. */
static int
parse_limit(PyObject *obj, Py_ssize_t *limit)
{
    long long value;
    int overflow;

    if (obj == Py_None) {
        *limit = -1;
        return 0;
    }
    value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || value > PY_SSIZE_T_MAX)
        *limit = -1;
    else if (overflow < 0 || value < 0)
        *limit = -2;
    else
        *limit = (Py_ssize_t)value;
    return 0;
}

/* scan(buf, pos, mask_bit, limit) -> (pending, new_pos)
 *
 * From buf[pos:], the events of consecutive whole frames that are "plain": FIN set, RSV clear,
 * text or binary, MASK bit equal to mask_bit (0x80 or 0), payload at most limit bytes (None: no
 * bound). It stops before anything else: a control frame, a fragment, RSV bits, a partial frame,
 * a frame over the bound, a text frame that is not valid UTF-8 -- which the pure parser then
 * handles as ever -- and after SCAN_MAX_FRAMES frames or SCAN_MAX_PAYLOAD payload bytes. The
 * caller must be between messages. A text frame gives (TEXT, str); a binary one (BINARY_START,)
 * then (BINARY, bytes, True): what the pure parser gives (a binary frame within the bound passes
 * its size check whether the I/O layer unbounds it or not).
 *
 * pending holds each event followed by a size, in reverse order (pop the event, then its size):
 * the payload's length for TEXT and BINARY, the header's length for BINARY_START. new_pos is
 * the offset after the last frame taken. */
static PyObject *
speedups_scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos, limit, hl, n, total = 0;
    long mask_bit;
    int frames = 0;
    const unsigned char *buf, *key;
    PyObject *out, *event, *data;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "scan() takes exactly 4 arguments (buf, pos, mask_bit, limit)");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    mask_bit = PyLong_AsLong(args[2]);
    if (PyErr_Occurred() || parse_limit(args[3], &limit) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (pos < 0 || pos > view.len || (mask_bit != 0 && mask_bit != 0x80)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan(): pos out of range or mask_bit not 0 or 0x80");
        return NULL;
    }
    out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    buf = (const unsigned char *)view.buf;
    while (limit != -2 && frames < SCAN_MAX_FRAMES && total < SCAN_MAX_PAYLOAD) {
        hl = plain_header(buf + pos, view.len - pos, (int)mask_bit, limit, &n);
        if (hl == 0 || (frames && total + n > SCAN_MAX_PAYLOAD))
            break;
        key = mask_bit ? buf + pos + hl - 4 : NULL;
        if (buf[pos] == 0x80 + KIND_TEXT) {
            event = text_event(buf + pos + hl, n, key);
            if (event == NULL) {
                if (PyErr_Occurred())
                    goto error;
                break; /* invalid UTF-8: the pure parser fails the connection */
            }
            if (append_pair(out, event, n) < 0)
                goto error;
        }
        else {
            data = binary_payload(buf + pos + hl, n, key);
            if (data == NULL)
                goto error;
            Py_INCREF(binary_start_event);
            if (append_pair(out, binary_start_event, hl) < 0) {
                Py_DECREF(data);
                goto error;
            }
            if (append_pair(out, Py_BuildValue("(iNO)", KIND_BINARY, data, Py_True), n) < 0)
                goto error;
        }
        pos += hl + n;
        total += n;
        frames++;
    }
    PyBuffer_Release(&view);
    if (PyList_Reverse(out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return Py_BuildValue("(Nn)", out, pos);

error:
    PyBuffer_Release(&view);
    Py_DECREF(out);
    return NULL;
}

/* ---- Collector: a binary message gathered whole, unmasked straight into its final buffer ----
 *
 * Collector() -> an empty collector (protocol/_mask.py has the pure-Python equivalent).
 * add(data, key=None, more=-1): append data, XOR-ed with the 4-byte key repeated when a key is
 *     given (the key lined up with data's first byte); `more` is how many bytes the frame
 *     header still announces after data (-1: not known), a hint that only ever lowers the
 *     reserve. A first piece that is an exact bytes object, without a key, is kept as it is.
 * size: the bytes added so far.
 * finish() -> bytes: everything added, as one bytes object (no copy when it can be avoided);
 *     the collector is empty again.
 *
 * The buffer is a bytes object that only this collector references while it grows, so it is
 * resized in place (_PyBytes_Resize); one that is also referenced elsewhere (an adopted piece
 * still held by someone) is copied instead. It is never sized from the frame header alone: it
 * grows to at most twice what has arrived plus COLLECT_SLACK, and never past what has arrived
 * plus what is announced. Not thread-safe: a collector belongs to one connection's reader. */

#define COLLECT_SLACK 65536

/* xor_mask into a destination at any offset: the bytes up to its first 16-byte boundary one by
 * one, then xor_mask with the key turned to match, so that its wide stores are aligned (stores
 * that straddle cache lines made the unmasking of a piece twice as slow). */
static void
xor_mask_aligned(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char *key)
{
    Py_ssize_t head = (Py_ssize_t)((16 - ((uintptr_t)dst & 15)) & 15), i;
    unsigned char turned[4];

    if (head > n)
        head = n;
    for (i = 0; i < head; i++)
        dst[i] = src[i] ^ key[i & 3];
    for (i = 0; i < 4; i++)
        turned[i] = key[(head + i) & 3];
    xor_mask(dst + head, src + head, n - head, turned);
}

typedef struct {
    PyObject_HEAD
    PyObject *buf;   /* bytes whose first `size` bytes are the message so far, or NULL */
    Py_ssize_t size;
} CollectorObject;

/* Make room for `need` bytes in all; 0, or -1 with an exception set (the collector is then
 * empty). */
static int
collector_reserve(CollectorObject *c, Py_ssize_t need, Py_ssize_t more)
{
    Py_ssize_t cap = c->buf == NULL ? 0 : PyBytes_GET_SIZE(c->buf);
    Py_ssize_t bound, newcap;
    PyObject *grown;

    if (need <= cap)
        return 0;
    /* Twice what has arrived (and a little), but no more than what is announced. */
    bound = need <= (PY_SSIZE_T_MAX - COLLECT_SLACK) / 2 ? 2 * need + COLLECT_SLACK : PY_SSIZE_T_MAX;
    newcap = (more >= 0 && more <= bound - need) ? need + more : bound;
    if (c->buf == NULL) {
        c->buf = PyBytes_FromStringAndSize(NULL, newcap);
        return c->buf == NULL ? -1 : 0;
    }
    if (Py_REFCNT(c->buf) == 1) {
        if (_PyBytes_Resize(&c->buf, newcap) < 0) {
            c->size = 0; /* _PyBytes_Resize freed it and set it to NULL */
            return -1;
        }
        return 0;
    }
    grown = PyBytes_FromStringAndSize(NULL, newcap);
    if (grown == NULL)
        return -1;
    memcpy(PyBytes_AS_STRING(grown), PyBytes_AS_STRING(c->buf), (size_t)c->size);
    Py_SETREF(c->buf, grown);
    return 0;
}

static PyObject *
collector_add(CollectorObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    Py_ssize_t more = -1, n;
    int keyed = 0;
    unsigned char *dst;

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "add() takes 1 to 3 arguments (data, key=None, more=-1)");
        return NULL;
    }
    if (nargs == 3) {
        more = PyLong_AsSsize_t(args[2]);
        if (more == -1 && PyErr_Occurred())
            return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (nargs >= 2 && args[1] != Py_None) {
        if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
            PyBuffer_Release(&data);
            return NULL;
        }
        keyed = 1;
        if (key.len != 4) {
            PyErr_SetString(PyExc_ValueError, "the mask key must be 4 bytes");
            goto error;
        }
    }
    n = data.len;
    if (n == 0)
        goto done;
    if (c->buf == NULL && !keyed && PyBytes_CheckExact(args[0])) {
        /* Adopted, not copied: resized in place later only once nobody else holds it. */
        Py_INCREF(args[0]);
        c->buf = args[0];
        c->size = n;
        goto done;
    }
    if (n > PY_SSIZE_T_MAX - c->size) {
        PyErr_NoMemory();
        goto error;
    }
    if (collector_reserve(c, c->size + n, more) < 0)
        goto error;
    dst = (unsigned char *)PyBytes_AS_STRING(c->buf) + c->size;
    if (keyed)
        xor_mask_aligned(dst, (const unsigned char *)data.buf, n, (const unsigned char *)key.buf);
    else
        memcpy(dst, data.buf, (size_t)n);
    c->size += n;
done:
    PyBuffer_Release(&data);
    if (keyed)
        PyBuffer_Release(&key);
    Py_RETURN_NONE;
error:
    PyBuffer_Release(&data);
    if (keyed)
        PyBuffer_Release(&key);
    return NULL;
}

static PyObject *
collector_finish(CollectorObject *c, PyObject *Py_UNUSED(ignored))
{
    PyObject *out = c->buf;
    Py_ssize_t size = c->size;

    c->buf = NULL;
    c->size = 0;
    if (out == NULL)
        return PyBytes_FromStringAndSize(NULL, 0);
    if (PyBytes_GET_SIZE(out) == size)
        return out;
    if (Py_REFCNT(out) == 1) {
        if (_PyBytes_Resize(&out, size) < 0)
            return NULL;
        return out;
    }
    Py_SETREF(out, PyBytes_FromStringAndSize(PyBytes_AS_STRING(out), size));
    return out;
}

static PyObject *
collector_size(CollectorObject *c, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(c->size);
}

static PyObject *
collector_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "Collector() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0); /* zeroed: buf NULL, size 0 */
}

static void
collector_dealloc(CollectorObject *c)
{
    Py_XDECREF(c->buf);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef collector_methods[] = {
    {"add", (PyCFunction)(void (*)(void))collector_add, METH_FASTCALL,
     "add(data, key=None, more=-1): append data, unmasked with key when one is given."},
    {"finish", (PyCFunction)collector_finish, METH_NOARGS,
     "finish() -> bytes: everything added, as one bytes object; the collector is empty again."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef collector_getset[] = {
    {"size", (getter)collector_size, NULL, "The bytes added so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CollectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wsevents._speedups.Collector",
    .tp_basicsize = sizeof(CollectorObject),
    .tp_dealloc = (destructor)collector_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A binary message gathered whole, unmasked straight into its final buffer.",
    .tp_methods = collector_methods,
    .tp_getset = collector_getset,
    .tp_new = collector_new,
};

/* ---- end of Collector ---- */


static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL,
     "mask(data, key) -> bytes: XOR data with the 4-byte key repeated."},
    {"scan", (PyCFunction)(void (*)(void))speedups_scan, METH_FASTCALL,
     "scan(buf, pos, mask_bit, limit) -> (pending, new_pos): the events of the whole plain data "
     "frames at buf[pos:] (see the C source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "wsevents._speedups",
    "Optional compiled helpers for wsevents (a pure-Python fallback always exists).",
    -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;

    if (binary_start_event == NULL) {
        binary_start_event = Py_BuildValue("(i)", KIND_BINARY_START);
        if (binary_start_event == NULL)
            return NULL;
    }
    if (PyType_Ready(&CollectorType) < 0)
        return NULL;
    module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&CollectorType);
    if (PyModule_AddObject(module, "Collector", (PyObject *)&CollectorType) < 0) {
        Py_DECREF(&CollectorType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
