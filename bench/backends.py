"""Running the jobs of a plan: in this process, in parallel processes (joblib's loky), or on a dask cluster.

Local backends let each job work in its folder of the results store, so an interrupted job resumes from
its last finished epoch. On dask, a job runs in a temporary folder of its worker and returns its files;
the client writes them into the store as each job arrives (DONE last), so workers need no shared disk
and a client that crashes keeps every job that had come back. A job whose worker dies is reported as
failed and stays incomplete; the next run redoes it.

GPUs: on a machine with several, parallel jobs run one per GPU (each pinned to its own); on dask, a job
that will use CUDA asks for one ``GPU`` resource, so workers started with ``--resources GPU=1`` take one
job each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from joblib import Parallel, delayed
from tqdm.auto import tqdm

from bench.config import RunConfig
from bench.data.cache import ensure_cache_verbosely
from bench.device import visible_gpus
from bench.errors import BenchError
from bench.freshness import CurrentData
from bench.jobs import Job, JobResult, pending, remote_inputs, remote_job, run_job, store_output
from bench.progress import progress_bar
from bench.store import Store

BACKENDS = ("loky", "dask")


def check_backend(backend: str, scheduler: str | None) -> None:
    """The backend and scheduler a run names, checked before any work (also before a dry run)."""
    if backend not in BACKENDS:
        raise BenchError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if scheduler and backend != "dask":
        raise BenchError("--scheduler names a dask scheduler; add --backend dask.")


def execute(plan: list[Job], *, run: RunConfig, store: Store, n_jobs: int | None = None, backend: str = "loky",
            scheduler: str | None = None, progress: bool = True, log: Any = print) -> list[JobResult]:
    """Run every job of ``plan`` that is not finished; return one result per job that ran.

    ``n_jobs``: jobs at a time (default: one per visible GPU when training on CUDA, else 1; on dask,
    the workers of the cluster, or ``n_jobs`` local workers when no ``scheduler`` is given).
    Finished jobs are skipped (and counted). A failing job is reported, the others go on.
    """
    check_backend(backend, scheduler)
    current = CurrentData(run.data)
    states = {job.job_id: pending(job, store, current) for job in plan}
    todo = [job for job in plan if states[job.job_id].state != "done"]
    skipped = len(plan) - len(todo)
    if skipped:
        log(f"{skipped} of {len(plan)} job(s) already finished in {store.runs}; skipping them.")
    if not todo:
        return []
    n_jobs = parallel_jobs(n_jobs, run, len(todo), log)
    # Each job runs with the CPU threads its identity names (make_plan resolved them).
    if backend == "dask":
        results = _dask(todo, states=states, run=run, store=store, n_jobs=n_jobs, scheduler=scheduler, log=log)
    else:
        prepare_data(todo, run=run, log=log)  # here, once, so parallel workers never build the same cache
        results = _loky(todo, run=run, store=store, n_jobs=n_jobs, progress=progress)
    collected: list[JobResult] = []
    bar = progress_bar(total=len(todo), desc="jobs", unit="job", show=progress, position=0)
    for result in results:
        collected.append(result)
        bar.update(1)
        (tqdm.write if progress else log)(result_line(result))
    bar.close()
    return collected


def prepare_data(jobs: list[Job], *, run: RunConfig, log: Any = print) -> None:
    """Build (or find) the frame cache of every domain the jobs touch, saying so for those it builds."""
    descriptions = {name: desc for job in jobs for name, desc in job.datasets.items()}
    for desc in descriptions.values():
        ensure_cache_verbosely(desc, run.data, log=log, quiet_when_built=True)


def parallel_jobs(n_jobs: int | None, run: RunConfig, todo: int, log: Any = print) -> int:
    """Jobs at a time: ``n_jobs`` (default 1), but one per GPU when several are visible to a CUDA run (more
    would share a GPU), and never more than there are jobs."""
    gpus = visible_gpus() if run.train.device in ("auto", "cuda") else 0
    if n_jobs is None:
        n_jobs = gpus if gpus > 1 else 1
    elif gpus > 1 and n_jobs > gpus:
        log(f"{gpus} GPUs are visible: running {gpus} jobs at a time, one per GPU (asked for {n_jobs}).")
        n_jobs = gpus
    return max(1, min(n_jobs, todo))


def _loky(todo: list[Job], *, run: RunConfig, store: Store, n_jobs: int, progress: bool) -> Iterator[JobResult]:
    if n_jobs == 1:
        for job in todo:
            yield run_job(job, run=run, out=store.root, progress=progress)
        return
    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(run_job)(job, run=run, out=store.root, progress=False)
                        for job in todo)


def _dask(todo: list[Job], *, states: dict[str, Any], run: RunConfig, store: Store, n_jobs: int,
          scheduler: str | None, log: Any) -> Iterator[JobResult]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BenchError("--backend dask needs dask.distributed; install it with pip install -e '.[dask]'.") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise BenchError(f"Cannot reach the dask scheduler at {scheduler!r} ({exc}); start it with "
                             f"`dask scheduler` and check the address.") from None
    else:
        gpus = visible_gpus() if run.train.device in ("auto", "cuda") else 0
        cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                               resources={"GPU": 1} if gpus else None)
        client = Client(cluster)
    try:
        log(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at {client.scheduler.address}")
        resources = {"GPU": 1} if _wants_gpu(run, client) else None
        futures = {}
        for job in todo:
            state, tests = states[job.job_id].state, list(states[job.job_id].tests)
            future = client.submit(remote_job, job, run=run, state=state, tests=tests,
                                   inputs=remote_inputs(job, store, state),
                                   key=f"bench-{job.job_id}-{time.time_ns()}", pure=False, resources=resources)
            futures[future] = (job, state)
        for future in as_completed(futures):
            job, state = futures.pop(future)
            try:
                output = future.result()
            except Exception as exc:  # raised in the worker, or the worker died (KilledWorker)
                yield JobResult(job, "failed", message=f"{type(exc).__name__}: {exc}")
                continue
            yield store_output(job, output, store=store, state=state)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _wants_gpu(run: RunConfig, client: Any) -> bool:
    """Whether jobs should ask for a GPU: always for device cuda, for auto when workers offer GPUs."""
    if run.train.device.startswith("cuda"):
        return True
    if run.train.device != "auto":
        return False
    workers = client.scheduler_info().get("workers", {}).values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def result_line(result: JobResult) -> str:
    job = result.job
    if result.status == "failed":
        return f"FAILED {job.label}: {result.message}"
    if result.status == "busy":
        return f"busy   {job.label}: {result.message}"
    said = f"; {result.message}" if result.message else ""
    if result.status == "predicted":
        return (f"done   {job.label}: predicted new test domains (or the validation split) with the saved model "
                f"({result.seconds:.0f} s){said}")
    s = result.summary
    score = s.get("selection_score", float("nan"))
    return (f"done   {job.label}: best epoch {s.get('best_epoch')} of {s.get('epochs')} "
            f"({s.get('selection')} {score:.4f}), {result.seconds:.0f} s, "
            f"{s.get('train_images_per_second', 0):.0f} train img/s{said}")
