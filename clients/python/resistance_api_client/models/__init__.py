"""Contains all the data models used in inputs/outputs"""

from .account import Account
from .account_create import AccountCreate
from .account_page import AccountPage
from .account_update import AccountUpdate
from .averages import Averages
from .by_category import ByCategory
from .failed_checks import FailedChecks
from .failed_checks_database import FailedChecksDatabase
from .failed_checks_redis import FailedChecksRedis
from .gender import Gender
from .health import Health
from .health_status import HealthStatus
from .infection_report import InfectionReport
from .infection_report_in import InfectionReportIn
from .infection_report_summary import InfectionReportSummary
from .inventory import Inventory
from .inventory_in import InventoryIn
from .location import Location
from .login import Login
from .logout import Logout
from .me import Me
from .no_body import NoBody
from .not_ready_problem import NotReadyProblem
from .password_change import PasswordChange
from .problem import Problem
from .problem_errors import ProblemErrors
from .ready import Ready
from .ready_checks import ReadyChecks
from .ready_checks_database import ReadyChecksDatabase
from .ready_checks_redis import ReadyChecksRedis
from .ready_status import ReadyStatus
from .register import Register
from .registered import Registered
from .resources_report import ResourcesReport
from .robot import Robot
from .robot_category import RobotCategory
from .robot_data_source import RobotDataSource
from .robot_page import RobotPage
from .robot_refresh import RobotRefresh
from .robots_report import RobotsReport
from .role import Role
from .session import Session
from .session_page import SessionPage
from .survivor import Survivor
from .survivor_create import SurvivorCreate
from .survivor_page import SurvivorPage
from .token_pair import TokenPair
from .token_type import TokenType
from .trade import Trade
from .trade_create import TradeCreate
from .trade_items import TradeItems
from .trade_page import TradePage
from .trade_status import TradeStatus

__all__ = (
    "Account",
    "AccountCreate",
    "AccountPage",
    "AccountUpdate",
    "Averages",
    "ByCategory",
    "FailedChecks",
    "FailedChecksDatabase",
    "FailedChecksRedis",
    "Gender",
    "Health",
    "HealthStatus",
    "InfectionReport",
    "InfectionReportIn",
    "InfectionReportSummary",
    "Inventory",
    "InventoryIn",
    "Location",
    "Login",
    "Logout",
    "Me",
    "NoBody",
    "NotReadyProblem",
    "PasswordChange",
    "Problem",
    "ProblemErrors",
    "Ready",
    "ReadyChecks",
    "ReadyChecksDatabase",
    "ReadyChecksRedis",
    "ReadyStatus",
    "Register",
    "Registered",
    "ResourcesReport",
    "Robot",
    "RobotCategory",
    "RobotDataSource",
    "RobotPage",
    "RobotRefresh",
    "RobotsReport",
    "Role",
    "Session",
    "SessionPage",
    "Survivor",
    "SurvivorCreate",
    "SurvivorPage",
    "TokenPair",
    "TokenType",
    "Trade",
    "TradeCreate",
    "TradeItems",
    "TradePage",
    "TradeStatus",
)
