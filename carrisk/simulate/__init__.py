"""Synthetic CAR T-cell cohorts calibrated to Myers et al. (J Clin Oncol 2022) and Lamble et al. (2023).

The simulator draws patients in the record schema of ``docs/records.md`` together with their *true* event-free
survival (EFS) curves, so that a model's discrimination and calibration can be compared with the best any model
could reach on the same cohort (:func:`oracle_concordance`).

Generative model
----------------
All numeric values live in ``carrisk/data/simulation_params.json`` (written by ``benchmarks/calibrate_cohort.py``);
the names in brackets are their keys there.

1. **Age** at infusion: ``age_min_years + (age_max_years - age_min_years) * Beta(age_beta_a, age_beta_b)``, the
   Beta fitted to the published median 12.7 and IQR 7.1-17.5 years on the range 1-30 years.
2. **Sex** male with ``sex_male_prob``. **CAR product** from ``car_product_probs`` (tisagenlecleucel most common;
   every construct is 4-1BB except ``nci_cd28``).
3. **Blinatumomab**: exposed with ``blina_exposed_prob`` (18.3 %). Among the exposed the latent response is
   ``responder`` with ``blina_response_prob`` (57.5 % = 42/73), else ``nonresponder``; a share
   ``blina_unknown_response_share`` (4/77) of the exposed has the response *recorded* as unknown (the latent
   response still drives the outcome).
4. **KMT2A** rearranged and **prior allogeneic transplant** with group-specific probabilities
   (``kmt2a_prob_*``, ``hsct_prob_*``), more frequent among the exposed; a share ``hsct_second_share`` had two
   transplants; months since the last one is log-normal (``hsct_months_median``, ``hsct_months_sdlog``).
   **Prior inotuzumab** (``inotuzumab_prob_*``), **Down syndrome** (``down_syndrome_prob``) and the number of
   **prior relapses** (``prior_relapses_probs`` over 0, 1, 2, 3, 4) are drawn independently.
5. **Disease burden**: marrow blasts >= 5 % with a probability per latent blinatumomab group
   (``marrow_high_prob_*``); otherwise undetectable (share ``marrow_undetectable_share``) or MRD-positive.
   Within a stratum log10(blasts %) is a truncated normal (``marrow_high_log10_*`` on [log10 5, 2],
   ``marrow_mrd_log10_*`` on [-2, log10 4.99]). **CNS3**/CNS2 (``cns3_prob``, ``cns2_prob``) and non-CNS
   **extramedullary disease** (``emd_prob``) are independent. High burden = blasts >= 5 % or CNS3 or
   extramedullary disease (the study's definition).
6. **CD19 dim or partial** before infusion: logistic, ``logit p = cd19_intercept + cd19_logor_exposed * exposed
   + cd19_logor_nonresponder_extra * nonresponder + cd19_logor_high_burden * high``; partial (vs dim) with
   ``cd19_partial_share``; the rest bright.
7. **Day-28 CR**: logistic, ``logit p_CR = cr_intercept + cr_logor_blina_nonresponder + cr_logor_blina_responder
   + cr_logor_high_burden + cr_logor_cd19_dim_partial + cr_logor_kmt2a + cr_logor_inotuzumab`` (each term times
   its indicator). No CR -> EFS event at day 28.
8. **After CR**, four cause-specific hazards from infusion day 28 on: CD19-positive relapse, CD19-negative
   relapse, lineage switch, death in remission. Each is piecewise-exponential,
   ``h_k(t | x) = exp(hazard_log_rate_k) / 365.25 * hazard_shape_k[j] * exp(lp_k(x))`` for ``t`` in interval
   ``j`` of ``hazard_edges_days`` (days from infusion), with ``lp_k`` a sum of log hazard ratios
   (``loghr_<covariate>_<cause>``; relapse causes share ``loghr_blina_nonresponder``/``loghr_blina_responder``).
   EFS time = the first cause. A share ``unclassified_relapse_share`` of relapses is recorded "unclassified".
8a. **Not evaluable for response**: independently of everything else, a share ``non_evaluable_prob`` (8/420:
   the study had 412 of 420 evaluable) dies before the day-28 assessment, on a day uniform on [1, 27]
   (:data:`EARLY_DEATH_DAYS`): an EFS event and a death that day, ``day28_cr`` blank (cause ``no_cr`` in
   :func:`carrisk.competing.derive_first_event`: the study's EFS counts no CR by day 28 as an event). These draws
   come from a third random stream, so every other patient is the same as without them. They are distinct from
   the exposed patients whose *blinatumomab* response is unknown (``blina_response`` "not evaluable", share
   ``blina_unknown_response_share``): those are evaluable for the CAR response and have a recorded ``day28_cr``;
   they are left out of the per-blinatumomab-group CR rates only because their group is unknown.
9. **Overall survival**: death after relapse (or lineage switch) after an exponential time with median
   ``os_median_days_after_relapse``; after no CR with median ``os_median_days_after_no_cr``; death in
   remission is a death. No other deaths.
10. **Censoring**: infusion date uniform between ``accrual_start`` and ``accrual_end``, administrative
    cut-off at ``data_cutoff``, plus loss to follow-up from day 28 with hazard ``ltfu_rate_per_year``.
    EFS and OS share the censoring time; the day-28 response is always observed.
11. **Truth**: ``S(t) = 1 - q F(t)`` for ``t < 28`` and ``S(t) = (1 - q) p_CR exp(-sum_k H_k(t))`` for ``t >= 28``
    (``q = non_evaluable_prob``, ``F`` the uniform early-death distribution; ``true_cr_prob`` is ``p_CR``, the CR
    probability of an evaluable patient), exact
    (piecewise-linear cumulative hazards), without censoring. ``true_risk = -log S(12 months)``, the true
    12-month cumulative EFS hazard (higher = worse, a strictly decreasing function of ``true_efs_12mo``).

Randomness: ``np.random.default_rng(seed)`` is split into three independent streams, one for the patients, one
for the record spellings and missing cells, so ``messy=True`` and ``messy=False`` describe the same patients, and
one for the non-evaluable (early death) patients.

Assumptions (not printed in the abstract)
-----------------------------------------
=======================================  ===================  ==================================================
parameter                                value                reason
=======================================  ===================  ==================================================
car_product_probs tisa/CHOP/SCRI/NCI     .40/.27/.20/.13      tisagenlecleucel most common; three trial sites
sex_male_prob                            0.57                 usual male excess in paediatric B-ALL
kmt2a_prob_naive / _exposed              .10 / .20            ~10 % in R/R B-ALL; abstract: exposed more KMT2A-r
hsct_prob_naive / _exposed               .38 / .55            below ELIANA 61 % (trial); abstract: exposed more
hsct_second_share; months median, sdlog  .12; 14, 0.8         second transplants uncommon
marrow_high_prob naive/resp/nonresp      .40/.25/.65          -> high burden ~46 %; blina NR carry more disease
marrow_undetectable_share                0.50                 John 2025: >0-<5 % blasts in ~20 %
marrow_high_log10 mean / sd              1.6 / 0.4            -> >= 50 % blasts in ~12 % (John 2025: 12-18 %)
marrow_mrd_log10 mean / sd               -0.7 / 0.7           MRD levels centred ~0.2 %, spanning 0.01-5 %
cns3 / cns2 / emd prob                   .04/.08/.06          CNS3 and EMD are minority indications
prior_relapses_probs (0..4)              .12/.45/.30/.10/.03  mostly first/second relapse; 12 % refractory
down_syndrome_prob                       0.04                 DS enriched in R/R B-ALL
inotuzumab_prob_naive / _exposed         .06 / .20            rare before 2019; more among the exposed
cd19_logor_nonresponder_extra            0.8                  CD19 modulation concentrates in blina NR
cd19_logor_high_burden; partial share    0.5; 0.5             dim/partial seen only with measurable disease
cr_logor high/cd19/kmt2a/ino             -1/-.8/-.5/-.4       directions of Myers 2022 / John 2025
loghr_high_burden CD19+/CD19-/LS/death   .5/.9/.3/.2          Myers: burden -> EFS; Lamble: -> CD19-
loghr_mrd_positive_relapse               0.3                  residual MRD raises relapse modestly
loghr_cd19_dim_partial CD19+/CD19-/LS    .2/1.0/.3            Myers: dim/partial -> lower RFS; escape
loghr_kmt2a CD19+/CD19-/LS               0/.3/2.2             Lamble 2023: KMT2A drives lineage switch
loghr_age_per_10y CD19+/CD19-/LS/death   0/.3/-.3/.3          Lamble: older age -> CD19-; LS in the young
loghr_41bb CD19+/CD19-/LS                -.4/.6/0             4-1BB persists (fewer CD19+); Lamble: -> CD19-
loghr_blina_nonresponder_cd19neg_extra   0.5                  Lamble 2023: blina NR -> CD19-negative
loghr_prior_hsct relapses / death        .15 / .4             prior HSCT: modest relapse effect, more TRM
loghr_inotuzumab CD19+/CD19-/LS/death    .2/.3/0/.3           John 2025: prior inotuzumab worse
loghr_down_syndrome_death                0.9                  DS: higher treatment-related mortality
hazard_shape_* (5 intervals)             see JSON             relapses mostly in year 1; ELIANA 3-y EFS 44 %
death in remission (calibration target)  7 %                  NRM ~5-10 %; keeps 3-y EFS near ELIANA
os median after relapse / no CR          300 / 150 d          poor salvage after post-CAR failure
ltfu_rate_per_year                       0.04                 modest loss to follow-up
accrual 2012-01-01..2019-12-31           cut 2020-06-30       study window; administrative censoring
=======================================  ===================  ==================================================

Fitted by ``benchmarks/calibrate_cohort.py`` (least squares on the published moments): ``age_beta_a``,
``age_beta_b``, ``cd19_intercept``, ``cd19_logor_exposed``, ``cr_intercept``, ``cr_logor_blina_nonresponder``,
``cr_logor_blina_responder``, ``hazard_log_rate_*`` (four causes), ``loghr_blina_nonresponder``,
``loghr_blina_responder`` and ``hazard_late_multiplier``. The Beta cannot pass through all three published age
quartiles at once; the least-squares fit misses each by < 0.5 years. The share of patients dying in remission
is not published; it is an assumed calibration target (7 %) so that the fit does not trade relapses for deaths.

References
----------
1. Myers RM et al. Blinatumomab nonresponse and high-disease burden are associated with inferior outcomes after
   CD19-CAR for B-ALL. J Clin Oncol 2022;40:932-944.
2. Lamble AJ et al. Risk factors for CD19-negative relapse after CD19-CAR. Blood Adv 2023;7:575.
3. Maude SL et al. Tisagenlecleucel in children and young adults with B-cell lymphoblastic leukemia (ELIANA).
   N Engl J Med 2018;378:439-448.
"""

# The submodules, in the order of the generative model: parameters (fitted set, overrides, other centres),
# covariates (latent draws -> true covariates), outcomes (hazards, outcome times, censoring), records (canonical
# and messy spellings), truth (exact survival, cause incidences, oracle C, moments) and cohort (simulate_cohort).
# Names imported "as" themselves are not in __all__ but stay importable from carrisk.simulate, as before the split.
from carrisk.schema import MAX_MONTHS_SINCE_HSCT as MAX_MONTHS_SINCE_HSCT
from carrisk.schema import OUTCOME_COLUMNS, PREINFUSION_COLUMNS, RECORD_COLUMNS
from carrisk.simulate.cohort import SimulatedCohort, simulate_cohort
from carrisk.simulate.outcomes import EARLY_DEATH_DAYS as EARLY_DEATH_DAYS
from carrisk.simulate.outcomes import PHENOTYPE_OF_CAUSE as PHENOTYPE_OF_CAUSE
from carrisk.simulate.parameters import BLINA_GROUPS as BLINA_GROUPS
from carrisk.simulate.parameters import CAR_PRODUCTS as CAR_PRODUCTS
from carrisk.simulate.parameters import CAUSES, EXTERNAL_CENTRES, centre_params, load_simulation_params
from carrisk.simulate.parameters import RELAPSE_CAUSES as RELAPSE_CAUSES
from carrisk.simulate.truth import (
    TRUE_CIF_CAUSES,
    cohort_moments,
    oracle_concordance,
    true_cause_incidence,
    true_survival,
)
from carrisk.units import DAY28_DAYS as DAY28_DAYS
from carrisk.units import DAYS_PER_YEAR as DAYS_PER_YEAR
from carrisk.units import SIX_MONTHS_DAYS, TWELVE_MONTHS_DAYS

__all__ = [
    "CAUSES",
    "EXTERNAL_CENTRES",
    "OUTCOME_COLUMNS",
    "PREINFUSION_COLUMNS",
    "RECORD_COLUMNS",
    "SIX_MONTHS_DAYS",
    "TRUE_CIF_CAUSES",
    "TWELVE_MONTHS_DAYS",
    "SimulatedCohort",
    "centre_params",
    "cohort_moments",
    "load_simulation_params",
    "oracle_concordance",
    "simulate_cohort",
    "true_cause_incidence",
    "true_survival",
]
