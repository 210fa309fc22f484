"""Reference values from R's cmprsk on ``benchmarks.competing_reference.reference_data()``.

Regenerate with ``python -m benchmarks.competing_reference`` (needs Rscript and r-cran-cmprsk).
"""

#: Output of ``python -m benchmarks.competing_reference`` (cmprsk 2.2.11), Gray's test part.
CMPRSK_GRAY = [
    {"cause": 1, "statistic": 0.395207847964654, "p": 0.8206948463190347, "df": 2},
    {"cause": 2, "statistic": 0.09210236163676555, "p": 0.9549930836123333, "df": 2},
    {"cause": 3, "statistic": 4.051412121109381, "p": 0.13190068043483616, "df": 2},
]

#: Output of ``python -m benchmarks.competing_reference`` (cmprsk 2.2.11 crr, gtol 1e-12), Fine-Gray part;
#: ``cif_rows_1_3``: ``predict.crr`` for the first three patients' covariates at the days in ``at``.
CMPRSK_CRR = [
    {
        "cause": 1,
        "coef": [0.48172149679991727, 0.22476039565962805, 0.5436643893291003],
        "se": [0.13732648802943342, 0.08339625015196789, 0.2023948991454405],
        "at": [100, 365, 1000],
        "cif_rows_1_3": [
            [0.22024253368309132, 0.49343468401221646, 0.68688922387240026],
            [0.2479084964222249, 0.54107181348688904, 0.73547489100589458],
            [0.3090990082729671, 0.636093603712097, 0.82199224736430176],
        ],
    },
    {
        "cause": 2,
        "coef": [0.122947755829673, -0.053264177798157175, -0.4663787331388227],
        "se": [0.23485847466952822, 0.13535056396341935, 0.2755292659635673],
        "at": [100, 365, 1000],
        "cif_rows_1_3": [
            [0.047229762190711511, 0.12988953566243933, 0.17901907659329308],
            [0.057658922926802969, 0.1569992985076637, 0.21504571761164648],
            [0.054299805290889069, 0.14832861201133563, 0.20357495663801228],
        ],
    },
]
