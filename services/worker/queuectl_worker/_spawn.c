/* Starting a job's shell as fast as the machine allows, with PR_SET_PDEATHSIG.
 *
 * subprocess.Popen starts a child with vfork + exec, the cheapest way there is, unless a
 * preexec_fn is given: then it must fork (copying the worker's page tables) and run Python in the
 * child. The job's shell needs prctl(PR_SET_PDEATHSIG) between fork and exec (so that it dies with
 * its worker, even one killed by SIGKILL), which Popen cannot do without a preexec_fn. This module
 * does the same few steps as Popen's vfork path, in C, plus that prctl:
 *
 *   vfork; in the child: default signal handlers, the parent's signal mask, setsid, PR_SET_PDEATHSIG,
 *   exit if the worker is already gone, the job's directory, stdin/stdout/stderr, close every other
 *   descriptor, execve.
 *
 * Only async-signal-safe calls run in the child, which shares the parent's memory until execve.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* NULL-terminated array of the bytes objects in `sequence` (kept alive by `keep`), or NULL. */
static char **byte_strings(PyObject *sequence, PyObject **keep)
{
    PyObject *fast = PySequence_Fast(sequence, "argv and env must be sequences of bytes");
    if (fast == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    char **array = PyMem_Calloc(count + 1, sizeof(char *));
    if (array == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyBytes_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "argv and env items must be bytes");
            PyMem_Free(array);
            Py_DECREF(fast);
            return NULL;
        }
        array[i] = PyBytes_AS_STRING(item);
    }
    *keep = fast;
    return array;
}

static void close_from(int first)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, ~0U, 0) == 0)
        return;
#endif
    long last = sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd < last; fd++)
        close((int)fd);
}

/* In the vforked child: never returns. Failures are reported through *error (shared memory). */
static void child(char **argv, char **envp, const char *cwd, int stdin_fd, int stdout_fd, int stderr_fd,
                  pid_t parent, const sigset_t *old_mask, volatile int *error)
{
    struct sigaction action = {0};
    action.sa_handler = SIG_DFL;
    /* Python's handlers must not run here (they would touch the parent's memory); SIGPIPE and
       SIGXFSZ, ignored by Python, are restored to their defaults for the shell, as Popen does. */
    for (int number = 1; number < NSIG; number++) {
        struct sigaction current;
        if (sigaction(number, NULL, &current) == 0 && current.sa_handler != SIG_DFL
            && (current.sa_handler != SIG_IGN || number == SIGPIPE || number == SIGXFSZ))
            sigaction(number, &action, NULL);
    }
    if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        goto fail;
    if (getppid() != parent) /* the worker died before the prctl: nobody would end this job */
        _exit(127);
    if (cwd != NULL && chdir(cwd) < 0)
        goto fail;
    if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0)
        goto fail;
    if (cwd != NULL && chdir(cwd) < 0) /* the job's own directory: a missing one fails the start */
        goto fail;
    close_from(3);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    execve(argv[0], argv, envp);
fail:
    *error = errno ? errno : EINVAL;
    _exit(127);
}

PyDoc_STRVAR(spawn_doc,
"spawn(argv, env, stdin_fd, stdout_fd, stderr_fd, cwd=None) -> pid\n\n"
"Start argv[0] (a path) with argv and env (sequences of bytes, env as b'KEY=value'), as the leader\n"
"of a new session, with PR_SET_PDEATHSIG = SIGKILL, in the directory cwd (bytes; None: this\n"
"process's), its standard streams on the given descriptors and no other descriptor open. The caller\n"
"reaps the child. OSError if it could not be started.");

static PyObject *spawn(PyObject *module, PyObject *args)
{
    PyObject *argv_object, *env_object, *cwd_object = Py_None, *argv_keep = NULL, *env_keep = NULL;
    int stdin_fd, stdout_fd, stderr_fd;
    if (!PyArg_ParseTuple(args, "OOiii|O", &argv_object, &env_object, &stdin_fd, &stdout_fd, &stderr_fd,
                          &cwd_object))
        return NULL;
    if (cwd_object != Py_None && !PyBytes_Check(cwd_object)) {
        PyErr_SetString(PyExc_TypeError, "cwd must be bytes or None");
        return NULL;
    }
    /* Borrowed from the arguments, which outlive the call. */
    const char *cwd = cwd_object == Py_None ? NULL : PyBytes_AS_STRING(cwd_object);
    char **argv = byte_strings(argv_object, &argv_keep);
    if (argv == NULL)
        return NULL;
    char **envp = byte_strings(env_object, &env_keep);
    if (envp == NULL || argv[0] == NULL) {
        if (envp != NULL)
            PyErr_SetString(PyExc_ValueError, "argv must not be empty");
        PyMem_Free(argv);
        PyMem_Free(envp);
        Py_XDECREF(argv_keep);
        Py_XDECREF(env_keep);
        return NULL;
    }

    volatile int error = 0;
    pid_t parent = getpid();
    sigset_t all, old_mask;
    sigfillset(&all);
    /* Blocked from before vfork until the child has reset its handlers (it unblocks before execve). */
    pthread_sigmask(SIG_BLOCK, &all, &old_mask);
    pid_t pid = vfork();
    if (pid == 0)
        child(argv, envp, cwd, stdin_fd, stdout_fd, stderr_fd, parent, &old_mask, &error);
    int vfork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);

    PyMem_Free(argv);
    PyMem_Free(envp);
    Py_DECREF(argv_keep);
    Py_DECREF(env_keep);
    if (pid < 0) {
        errno = vfork_errno;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (error) { /* the child exited without exec: reap it and say why */
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(pid);
}

static PyMethodDef methods[] = {
    {"spawn", spawn, METH_VARARGS, spawn_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_spawn", "vfork + PR_SET_PDEATHSIG + execve for job shells.", -1, methods,
};

PyMODINIT_FUNC PyInit__spawn(void)
{
    return PyModule_Create(&module);
}
